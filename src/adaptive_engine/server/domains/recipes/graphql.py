"""GraphQL of recipes (the wire calls them custom recipes)."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import requires
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.domains.identity.types import UserType
from adaptive_engine.server.domains.recipes import service
from adaptive_engine.server.graphql.common import LabelFilter
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.scalars import JSON, IdOrKey, Upload
from adaptive_engine.server.timestamps import epoch


@strawberry.type(name="Label")
class LabelType:
    key: str
    value: str


@strawberry.input(name="LabelInput")
class LabelInput:
    key: str
    value: str


@strawberry.input(name="CustomRecipeFilterInput")
class CustomRecipeFilterInput:
    labels: list[LabelFilter] | None = None


@strawberry.input(name="CreateRecipeInput")
class CreateRecipeInput:
    name: str
    key: str | None = None
    description: str | None = None
    labels: list[LabelInput] | None = None


@strawberry.input(name="UpdateRecipeInput")
class UpdateRecipeInput:
    name: str | None = None
    description: str | None = None
    labels: list[LabelInput] | None = None


@strawberry.type(name="CustomRecipe")
class CustomRecipeType:
    row: strawberry.Private[orm.CustomRecipe]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def key(self) -> str | None:
        return self.row.key

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def content(self) -> str:
        return self.row.content

    @strawberry.field
    def content_hash(self) -> str:
        return self.row.content_hash

    @strawberry.field
    def editable(self) -> bool:
        return self.row.editable and self.row.use_case_id is not None

    @strawberry.field(name="global")
    def global_(self) -> bool:
        return self.row.use_case_id is None

    @strawberry.field
    def builtin(self) -> bool:
        return self.row.builtin

    @strawberry.field
    def input_schema(self) -> JSON:
        return self.row.json_schema

    @strawberry.field
    def json_schema(self) -> JSON:
        return self.row.json_schema

    @strawberry.field
    def description(self) -> str:
        return self.row.description

    @strawberry.field
    def job_kind(self) -> str:
        return self.row.job_kind

    @strawberry.field
    def labels(self) -> list[LabelType]:
        return [LabelType(key=label["key"], value=label["value"]) for label in self.row.labels]

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0

    @strawberry.field
    def updated_at(self) -> int | None:
        return epoch(self.row.updated_at)

    @strawberry.field
    def created_by(self) -> UserType | None:
        return UserType(row=self.row.created_by) if self.row.created_by else None


def _pairs(labels: list[LabelInput] | None) -> list[tuple[str, str]] | None:
    return None if labels is None else [(label.key, label.value) for label in labels]


async def _read(file: Any) -> tuple[bytes, str]:
    return await file.read(), getattr(file, "filename", None) or "main.py"


@strawberry.type
class RecipeQuery:
    @strawberry.field(
        extensions=[requires("recipe:write")],
        description="A recipe's argument schema, job kind and description (main.py's source; nothing stored)",
    )
    async def parse_recipe_schema(self, info: Info[Context, None], recipe_content: str) -> JSON:
        ctx = info.context
        settings = ctx.platform.settings
        return await service.parse_schema(
            ctx.platform.file_store,
            recipe_content,
            max_bytes=settings.max_recipe_bytes,
            schema_timeout_s=settings.recipe_schema_timeout_s,
            sandbox=ctx.platform.sandbox,
        )

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def custom_recipe(
        self, info: Info[Context, None], id_or_key: IdOrKey, use_case: IdOrKey
    ) -> CustomRecipeType | None:
        ctx = info.context
        return CustomRecipeType(row=await service.get_recipe(ctx.session, ctx.principal, id_or_key, use_case))

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def custom_recipes(
        self, info: Info[Context, None], use_case: IdOrKey, filter: CustomRecipeFilterInput | None = None
    ) -> list[CustomRecipeType]:
        ctx = info.context
        filters = [(f.key, f.value) for f in (filter.labels or [])] if filter else None
        rows = await service.list_recipes(ctx.session, ctx.principal, use_case, filters)
        return [CustomRecipeType(row=r) for r in rows]


@strawberry.type
class RecipeMutation:
    @strawberry.mutation(extensions=[requires("recipe:write", use_case="use_case")])
    async def create_custom_recipe(
        self, info: Info[Context, None], use_case: IdOrKey, input: CreateRecipeInput, file: Upload
    ) -> CustomRecipeType:
        ctx = info.context
        data, filename = await _read(file)
        settings = ctx.platform.settings
        recipe = await service.create_recipe(
            ctx.session,
            ctx.principal,
            ctx.platform.file_store,
            use_case=use_case,
            name=input.name,
            key=input.key,
            description=input.description,
            labels=_pairs(input.labels),
            data=data,
            filename=filename,
            max_bytes=settings.max_recipe_bytes,
            schema_timeout_s=settings.recipe_schema_timeout_s,
            sandbox=ctx.platform.sandbox,
        )
        return CustomRecipeType(row=recipe)

    @strawberry.mutation(extensions=[requires("recipe:write", use_case="use_case")])
    async def update_custom_recipe(
        self,
        info: Info[Context, None],
        use_case: IdOrKey,
        id: IdOrKey,
        input: UpdateRecipeInput,
        file: Upload | None = None,
    ) -> CustomRecipeType:
        ctx = info.context
        data, filename = await _read(file) if file is not None else (None, None)
        settings = ctx.platform.settings
        recipe = await service.update_recipe(
            ctx.session,
            ctx.principal,
            ctx.platform.file_store,
            use_case=use_case,
            id_or_key=id,
            name=input.name,
            description=input.description,
            labels=_pairs(input.labels),
            data=data,
            filename=filename,
            max_bytes=settings.max_recipe_bytes,
            schema_timeout_s=settings.recipe_schema_timeout_s,
            sandbox=ctx.platform.sandbox,
        )
        return CustomRecipeType(row=recipe)

    @strawberry.mutation(extensions=[requires("recipe:write", use_case="use_case")])
    async def delete_custom_recipe(self, info: Info[Context, None], use_case: IdOrKey, id: IdOrKey) -> bool:
        ctx = info.context
        return await service.delete_recipe(ctx.session, ctx.principal, ctx.platform.file_store, id, use_case)
