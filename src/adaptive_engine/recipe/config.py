"""InputConfig: the base class of a recipe's arguments (a pydantic model; its JSON schema is the recipe's)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class InputConfig(BaseModel):
    """Subclass it as ``class Config(InputConfig)``; unknown arguments are refused, so typos show up."""

    model_config = ConfigDict(extra="forbid")

    @classmethod
    def recipe_json_schema(cls) -> dict[str, Any]:
        """The JSON schema the server stores for the recipe: self-contained and samplable."""
        schema = cls.model_json_schema()
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        return schema
