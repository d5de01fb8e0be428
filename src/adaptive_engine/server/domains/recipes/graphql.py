"""GraphQL of recipes (the wire calls them custom recipes)."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import requires
from adaptive_engine.server.domains.identity.types import UserType, to_gql_user
from adaptive_engine.server.domains.recipes import service
from adaptive_engine.server.domains.recipes.records import RecipeRecord
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
    id: uuid.UUID
    key: str | None
    name: str
    content: str
    content_hash: str
    editable: bool
    global_: bool = strawberry.field(name="global")
    builtin: bool
    input_schema: JSON
    json_schema: JSON
    description: str
    job_kind: str
    labels: list[LabelType]
    created_at: int
    updated_at: int | None
    created_by: UserType | None


def to_gql_recipe(recipe: RecipeRecord) -> CustomRecipeType:
    return CustomRecipeType(
        id=recipe.id,
        key=recipe.key,
        name=recipe.name,
        content=recipe.content,
        content_hash=recipe.content_hash,
        # Global recipes are built in: no use case may change them.
        editable=recipe.editable and recipe.use_case_id is not None,
        global_=recipe.use_case_id is None,
        builtin=recipe.builtin,
        input_schema=JSON(recipe.json_schema),
        json_schema=JSON(recipe.json_schema),
        description=recipe.description,
        job_kind=recipe.job_kind,
        labels=[LabelType(key=k, value=v) for k, v in recipe.labels],
        created_at=epoch(recipe.created_at) or 0,
        updated_at=epoch(recipe.updated_at),
        created_by=to_gql_user(recipe.created_by) if recipe.created_by else None,
    )


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
        schema = await service.parse_schema(
            ctx.platform.file_store,
            recipe_content,
            max_bytes=settings.max_recipe_bytes,
            schema_timeout_s=settings.recipe_schema_timeout_s,
            sandbox=ctx.platform.sandbox,
        )
        return JSON(schema)

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def custom_recipe(
        self, info: Info[Context, None], id_or_key: IdOrKey, use_case: IdOrKey
    ) -> CustomRecipeType | None:
        ctx = info.context
        return to_gql_recipe(await service.get_recipe(ctx.session, ctx.principal, id_or_key, use_case))

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def custom_recipes(
        self, info: Info[Context, None], use_case: IdOrKey, filter: CustomRecipeFilterInput | None = None
    ) -> list[CustomRecipeType]:
        ctx = info.context
        filters = [(f.key, f.value) for f in (filter.labels or [])] if filter else None
        return [to_gql_recipe(r) for r in await service.list_recipes(ctx.session, ctx.principal, use_case, filters)]


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
        return to_gql_recipe(recipe)

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
        return to_gql_recipe(recipe)

    @strawberry.mutation(extensions=[requires("recipe:write", use_case="use_case")])
    async def delete_custom_recipe(self, info: Info[Context, None], use_case: IdOrKey, id: IdOrKey) -> bool:
        ctx = info.context
        return await service.delete_recipe(ctx.session, ctx.principal, ctx.platform.file_store, id, use_case)
