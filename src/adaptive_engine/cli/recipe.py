"""`adaptive-engine recipe …`: develop recipes locally."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from adaptive_engine.cli.errors import ErrorHandling, describe, fail

recipe_app = typer.Typer(help="Develop recipes locally", no_args_is_help=True, rich_markup_mode=None)


@recipe_app.command("run")
def run(
    path: Annotated[Path, typer.Argument(help="A recipe .py file, or a folder with main.py")],
    args: Annotated[str, typer.Option("--args", help="The recipe's arguments, as a JSON object")] = "{}",
    output_dir: Annotated[Path, typer.Option("--output-dir", help="Where artifacts and metrics go")] = Path(
        "recipe-output"
    ),
    base_url: Annotated[
        str | None,
        typer.Option("--base-url", envvar="ADAPTIVE_BASE_URL", help="A server, for ctx.client and datasets"),
    ] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", envvar="ADAPTIVE_API_KEY")] = None,
    use_case: Annotated[str | None, typer.Option("--use-case")] = None,
) -> None:
    """Run a recipe in this process with a local context."""
    from adaptive_engine.recipe.context import RecipeContext
    from adaptive_engine.recipe.entry import RecipeDefinitionError
    from adaptive_engine.recipe.loader import run as run_recipe

    try:
        parsed = json.loads(args)
    except json.JSONDecodeError as exc:
        typer.echo(f"error: --args is not valid JSON: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if not isinstance(parsed, dict):
        typer.echo("error: --args must be a JSON object", err=True)
        raise typer.Exit(code=2)
    ctx = RecipeContext.local(output_dir, base_url=base_url, api_key=api_key, use_case=use_case)
    try:
        run_recipe(path, parsed, ctx)
    except RecipeDefinitionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    except Exception as exc:
        # What the recipe's own code raised: one line (its traceback with --debug).
        if ErrorHandling.debug:
            raise
        fail(f"the recipe failed: {describe(exc)}")
    typer.echo(f"done; outputs in {output_dir}")


@recipe_app.command("schema")
def schema(path: Annotated[Path, typer.Argument(help="A recipe .py file, or a folder with main.py")]) -> None:
    """Print the JSON schema of the recipe's Config."""
    from adaptive_engine.recipe.entry import RecipeDefinitionError
    from adaptive_engine.recipe.loader import json_schema

    try:
        typer.echo(json.dumps(json_schema(path), indent=2))
    except RecipeDefinitionError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
