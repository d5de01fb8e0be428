"""``@recipe_main`` and how a recipe's entry point is found in a loaded module."""

from __future__ import annotations

import inspect
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from adaptive_engine.recipe.config import InputConfig

MARK = "__adaptive_recipe_main__"


class RecipeDefinitionError(Exception):
    """The recipe file does not define a usable recipe (no @recipe_main, bad signature, bad Config)."""


@dataclass(frozen=True)
class RecipeEntry:
    function: Callable[..., Awaitable[Any] | Any]
    config_type: type[InputConfig]


def recipe_main(function: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``async def main(config: Config, ctx: RecipeContext)`` as the recipe's entry point.

    The type of the first parameter (an ``InputConfig`` subclass) is the recipe's argument schema.
    A plain (non-async) function is accepted too.
    """
    _config_type(function)  # fail at import time on a bad signature
    setattr(function, MARK, True)
    return function


def _config_type(function: Callable[..., Any]) -> type[InputConfig]:
    try:
        params = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError) as exc:
        raise RecipeDefinitionError(f"@recipe_main needs a function: {exc}") from exc
    if len(params) != 2:
        raise RecipeDefinitionError(
            f"@recipe_main function '{function.__name__}' must take exactly (config, ctx); it takes"
            f" {len(params)} parameters"
        )
    try:
        hints = typing.get_type_hints(function)
    except Exception as exc:  # any failure to resolve annotations is the recipe's error
        raise RecipeDefinitionError(f"cannot resolve the annotations of '{function.__name__}': {exc}") from exc
    config_type = hints.get(params[0].name)
    if not (inspect.isclass(config_type) and issubclass(config_type, InputConfig)):
        raise RecipeDefinitionError(
            f"the first parameter of '{function.__name__}' must be annotated with a subclass of InputConfig"
        )
    return config_type


def find_entry(module: ModuleType) -> RecipeEntry:
    """The single @recipe_main function defined in ``module``."""
    found = [
        value
        for value in vars(module).values()
        if callable(value) and getattr(value, MARK, False) and getattr(value, "__module__", None) == module.__name__
    ]
    if not found:
        raise RecipeDefinitionError("no function decorated with @recipe_main was found in the entry point")
    if len(found) > 1:
        names = ", ".join(sorted(f.__name__ for f in found))
        raise RecipeDefinitionError(f"more than one @recipe_main function: {names}")
    function = found[0]
    return RecipeEntry(function=function, config_type=_config_type(function))
