from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL
from adaptive_engine.sdk._schema_sample import sample
from adaptive_engine.sdk.types import CustomRecipe

RECIPE_FIELDS = """
  id key name content contentHash editable global builtin inputSchema jsonSchema description
  labels { key value } createdAt updatedAt createdBy { id name email }
"""


def recipe_key_for(path: Path, entrypoint: str | None) -> str:
    if path.is_file():
        return path.stem
    if path.is_dir():
        return f"{path.name}/{Path(entrypoint).stem}" if entrypoint else path.name
    raise ValueError(f"Path must be a Python file or directory: {path}")


def pack(path: str | Path, entrypoint: str | None) -> tuple[str, bytes, str]:
    """(filename, bytes, content type) for a recipe file, or a folder zipped with its entry point
    renamed to main.py at the root. Raises ValueError / FileNotFoundError on the documented misuses."""
    p = Path(path)
    if p.is_file():
        if entrypoint:
            raise ValueError("entrypoint is only supported when path is a directory, not a single file")
        if p.suffix.lower() != ".py":
            raise ValueError(f"Expected a Python file with .py extension, got: {p}")
        return p.name, p.read_bytes(), "text/x-python"
    if not p.exists():
        raise FileNotFoundError(f"Path not found: {p}")
    if not p.is_dir():
        raise ValueError(f"Path must be a Python file or a directory: {p}")
    has_main = (p / "main.py").is_file()
    if entrypoint:
        if has_main:
            raise ValueError(f"Cannot specify entrypoint when main.py already exists in directory: {p}")
        if not (p / entrypoint).is_file():
            raise FileNotFoundError(f"Specified entrypoint file not found: {entrypoint} in directory {p}")
    elif not has_main:
        raise FileNotFoundError("Directory must contain a 'main.py' file, or you must specify an entrypoint file")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(p):
            dirs[:] = [d for d in dirs if d != "__pycache__"]
            for name in sorted(files):
                file = Path(root) / name
                arcname = file.relative_to(p).as_posix()
                if entrypoint and arcname == Path(entrypoint).as_posix():
                    arcname = "main.py"
                archive.write(file, arcname)
    return f"{p.name}.zip", buffer.getvalue(), "application/zip"


def _labels(labels: dict[str, str] | Sequence[tuple[str, str]] | None) -> list[dict[str, str]] | None:
    if labels is None:
        return None
    pairs = labels.items() if isinstance(labels, dict) else labels
    return [{"key": k, "value": v} for k, v in pairs]


class Recipes(Resource[C]):
    """Recipes: Python programs run as jobs. A recipe is a .py file or a folder with main.py."""

    @operation
    def upload(
        self,
        path: str,
        recipe_key: str | None = None,
        entrypoint: str | None = None,
        name: str | None = None,
        description: str | None = None,
        labels: dict[str, str] | None = None,
        use_case: str | None = None,
    ) -> Returns[CustomRecipe]:
        """Upload a recipe from a Python file or a folder (zipped, with ``entrypoint`` as main.py). The
        server derives the JSON schema of its Config and rejects a recipe that does not load."""
        use_case = self.use_case_key(use_case)
        filename, data, content_type = pack(path, entrypoint)
        key = recipe_key or recipe_key_for(Path(path), entrypoint)
        query = (
            "mutation CreateCustomRecipe($useCase: IdOrKey!, $input: CreateRecipeInput!, $file: Upload!) {"
            f" createCustomRecipe(useCase: $useCase, input: $input, file: $file) {{ {RECIPE_FIELDS} }} }}"
        )
        variables = {
            "useCase": use_case,
            "input": {"key": key, "name": name or key, "description": description, "labels": _labels(labels)},
        }
        data = yield GraphQL(query, variables, files={"file": (filename, data, content_type)})
        return CustomRecipe.model_validate(data["createCustomRecipe"])

    @operation
    def update(
        self,
        recipe_key: str,
        path: str | None = None,
        entrypoint: str | None = None,
        name: str | None = None,
        description: str | None = None,
        labels: Sequence[tuple[str, str]] | None = None,
        use_case: str | None = None,
    ) -> Returns[CustomRecipe]:
        """Change a recipe's metadata, and its code when ``path`` is given."""
        use_case = self.use_case_key(use_case)
        query = (
            "mutation UpdateCustomRecipe($useCase: IdOrKey!, $id: IdOrKey!, $input:"
            " UpdateRecipeInput!, $file: Upload) {"
            f" updateCustomRecipe(useCase: $useCase, id: $id, input: $input, file: $file) {{ {RECIPE_FIELDS} }} }}"
        )
        variables = {
            "useCase": use_case,
            "id": recipe_key,
            "input": {"name": name, "description": description, "labels": _labels(labels)},
        }
        if path:
            filename, data, content_type = pack(path, entrypoint)
            result = yield GraphQL(query, variables, files={"file": (filename, data, content_type)})
        else:
            if entrypoint:
                raise ValueError("entrypoint needs a path")
            result = yield GraphQL(query, {**variables, "file": None})
        return CustomRecipe.model_validate(result["updateCustomRecipe"])

    def _get(self, recipe_key: str, use_case: str) -> Returns[CustomRecipe]:
        query = (
            "query CustomRecipe($idOrKey: IdOrKey!, $useCase: IdOrKey!) {"
            f" customRecipe(idOrKey: $idOrKey, useCase: $useCase) {{ {RECIPE_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"idOrKey": recipe_key, "useCase": use_case})
        return CustomRecipe.model_validate(data["customRecipe"])

    @operation
    def get(self, recipe_key: str, use_case: str | None = None) -> Returns[CustomRecipe]:
        """A recipe by key or id (the use case's own, or a built-in one)."""
        return (yield from self._get(recipe_key, self.use_case_key(use_case)))

    @operation
    def list(self, use_case: str | None = None) -> Returns[list[CustomRecipe]]:
        """The use case's recipes and the built-in ones."""
        query = (
            "query CustomRecipes($useCase: IdOrKey!, $filter: CustomRecipeFilterInput!) {"
            f" customRecipes(useCase: $useCase, filter: $filter) {{ {RECIPE_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"useCase": self.use_case_key(use_case), "filter": {}})
        return [CustomRecipe.model_validate(r) for r in data["customRecipes"]]

    @operation
    def delete(self, recipe_key: str, use_case: str | None = None) -> Returns[bool]:
        """Delete a recipe (refused while jobs of it are pending or running)."""
        query = (
            "mutation DeleteCustomRecipe($useCase: IdOrKey!, $id: IdOrKey!) { deleteCustomRecipe(useCase:"
            " $useCase, id: $id) }"
        )
        data = yield GraphQL(query, {"useCase": self.use_case_key(use_case), "id": recipe_key})
        return bool(data["deleteCustomRecipe"])

    @operation
    def parse_schema(self, content: str) -> Returns[dict[str, Any]]:
        """The argument schema, job kind and description of a recipe's ``main.py`` source, without storing it."""
        data = yield GraphQL(
            "query ParseRecipeSchema($c: String!) { parseRecipeSchema(recipeContent: $c) }", {"c": content}
        )
        return dict(data["parseRecipeSchema"])

    @operation
    def generate_sample_input(self, recipe_key: str, use_case: str | None = None) -> Returns[dict[str, Any]]:
        """Arguments that satisfy the recipe's schema (defaults where it has them), to start from."""
        recipe = yield from self._get(recipe_key, self.use_case_key(use_case))
        value = sample(recipe.json_schema or {})
        return dict(value) if isinstance(value, dict) else {}
