"""Loading a recipe (a .py file, or a folder with main.py) and running it; used by the job process,
the schema probe and ``adaptive-engine recipe run``. Never imported by the server process."""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from adaptive_engine.recipe.context import RecipeContext
from adaptive_engine.recipe.entry import RecipeDefinitionError, RecipeEntry, find_entry

ENTRYPOINT = "main.py"
MODULE_NAME = "adaptive_recipe_main"


def entry_file(path: Path) -> Path:
    path = Path(path)
    if path.is_dir():
        main = path / ENTRYPOINT
        if not main.is_file():
            raise RecipeDefinitionError(f"the recipe folder has no {ENTRYPOINT}")
        return main
    if not path.is_file():
        raise RecipeDefinitionError(f"recipe not found: {path}")
    return path


def load(path: Path) -> RecipeEntry:
    """Import the recipe's entry point and find its @recipe_main function."""
    file = entry_file(path)
    folder = str(file.parent.resolve())
    if folder not in sys.path:
        sys.path.insert(0, folder)
    try:
        source = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise RecipeDefinitionError(f"{file.name} is not UTF-8 text") from exc
    try:
        compile(source, file.name, "exec")
    except SyntaxError as exc:
        raise RecipeDefinitionError(f"syntax error in {file.name} line {exc.lineno}: {exc.msg}") from exc
    spec = importlib.util.spec_from_file_location(MODULE_NAME, file)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except RecipeDefinitionError:
        raise
    except BaseException as exc:  # anything the user's module raises at import
        raise RecipeDefinitionError(f"importing {file.name} failed: {type(exc).__name__}: {exc}") from exc
    return find_entry(module)


def describe(path: Path) -> dict[str, Any]:
    """What the server records about a recipe: its schema, and the optional module-level
    ``JOB_KIND`` (TRAINING, EVALUATION …) and docstring."""
    schema = json_schema(path)
    module = sys.modules.get(MODULE_NAME)
    kind = getattr(module, "JOB_KIND", None)
    doc = (getattr(module, "__doc__", None) or "").strip()
    return {"schema": schema, "job_kind": kind if isinstance(kind, str) else None, "description": doc}


def json_schema(path: Path) -> dict[str, Any]:
    entry = load(path)
    try:
        schema = entry.config_type.recipe_json_schema()
        json.dumps(schema)
    except Exception as exc:
        raise RecipeDefinitionError(
            f"the recipe's Config has no valid JSON schema: {type(exc).__name__}: {exc}"
        ) from exc
    return schema


def describe_validation(error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        where = ".".join(str(p) for p in item.get("loc", ())) or "(root)"
        parts.append(f"{where}: {item.get('msg')}")
    return "; ".join(parts)


def run(path: Path, args: dict[str, Any], ctx: RecipeContext) -> Any:
    """Validate ``args`` against the recipe's Config and run its main to the end."""
    entry = load(path)
    try:
        config = entry.config_type.model_validate(args)
    except ValidationError as exc:
        raise RecipeDefinitionError(f"invalid arguments: {describe_validation(exc)}") from exc
    result = entry.function(config, ctx)
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


def main(argv: list[str] | None = None) -> int:
    """``python -m adaptive_engine.recipe.loader schema PATH`` prints {"schema": …} or {"error": …};
    ``… job PATH ARGS_FILE`` runs a recipe as a job (context from the environment)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) >= 2 and argv[0] == "schema":
        try:
            print(json.dumps(describe(Path(argv[1]))))
        except RecipeDefinitionError as exc:
            print(json.dumps({"error": str(exc)}))
        return 0
    if len(argv) >= 3 and argv[0] == "job":
        args = json.loads(Path(argv[2]).read_text(encoding="utf-8"))
        try:
            run(Path(argv[1]), args, RecipeContext.from_env())
        except RecipeDefinitionError as exc:
            print(f"RecipeError: {exc}", file=sys.stderr, flush=True)
            return 2
        except BaseException as exc:  # reported to the server through the exit status and log
            traceback.print_exc()
            print(f"{type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            return 1
        return 0
    print("usage: loader schema PATH | loader job PATH ARGS_FILE", file=sys.stderr)
    return 64


if __name__ == "__main__":
    sys.exit(main())
