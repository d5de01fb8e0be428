"""The recipe runtime: what a recipe file imports.

    from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

    class Config(InputConfig):
        epochs: int = 1

    @recipe_main
    async def main(config: Config, ctx: RecipeContext) -> None:
        ctx.report_progress(0.5, "half way")
        ctx.save_artifact("report.json", b"{}", kind="EVALUATION")

This package never imports the server; a job talks to the server through the SDK.
"""

from adaptive_engine.recipe.config import InputConfig
from adaptive_engine.recipe.context import ARTIFACT_KINDS, RecipeContext
from adaptive_engine.recipe.entry import RecipeDefinitionError, recipe_main

__all__ = ["ARTIFACT_KINDS", "InputConfig", "RecipeContext", "RecipeDefinitionError", "recipe_main"]
