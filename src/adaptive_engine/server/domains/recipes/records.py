"""What the recipes domain hands its readers: plain values built from the rows in one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adaptive_engine.server.db.models import CustomRecipe
from adaptive_engine.server.domains.identity.records import UserRecord


@dataclass(frozen=True, slots=True)
class RecipeRecord:
    id: uuid.UUID
    key: str | None
    name: str
    description: str
    content: str
    content_hash: str
    json_schema: dict[str, Any]
    job_kind: str
    labels: tuple[tuple[str, str], ...]
    builtin: bool
    editable: bool
    # None: a global recipe, seen by every use case.
    use_case_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime | None
    created_by: UserRecord | None

    @classmethod
    def of(cls, recipe: CustomRecipe) -> RecipeRecord:
        return cls(
            id=recipe.id,
            key=recipe.key,
            name=recipe.name,
            description=recipe.description,
            content=recipe.content,
            content_hash=recipe.content_hash,
            json_schema=recipe.json_schema,
            job_kind=recipe.job_kind,
            labels=tuple((label["key"], label["value"]) for label in recipe.labels),
            builtin=recipe.builtin,
            editable=recipe.editable,
            use_case_id=recipe.use_case_id,
            created_at=recipe.created_at,
            updated_at=recipe.updated_at,
            created_by=UserRecord.of(recipe.created_by) if recipe.created_by else None,
        )
