"""GraphQL types of the model registry (shared by the use case and models domains)."""

from __future__ import annotations

import enum
import uuid

import strawberry
from sqlalchemy import select
from strawberry.types import Info

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.graphql.loaders import children
from adaptive_engine.server.timestamps import epoch


@strawberry.enum(name="ModelOnline")
class ModelOnline(enum.Enum):
    ONLINE = "ONLINE"
    PENDING = "PENDING"
    OFFLINE = "OFFLINE"
    ERROR = "ERROR"


@strawberry.enum(name="ProviderName")
class ProviderName(enum.Enum):
    OPEN_AI = "OPEN_AI"
    LEGACY_OPEN_AI = "LEGACY_OPEN_AI"
    HARMONY = "HARMONY"
    GOOGLE = "GOOGLE"
    ANTHROPIC = "ANTHROPIC"


# Our provider names -> the wire enum ("HARMONY" is the reference system's own inference engine).
# Azure OpenAI speaks the OpenAI API; the official client knows no AZURE value, so it reads OPEN_AI
# there and our own `provider` field tells them apart.
PROVIDER_NAMES = {
    "local": ProviderName.HARMONY,
    "open_ai": ProviderName.OPEN_AI,
    "google": ProviderName.GOOGLE,
    "azure": ProviderName.OPEN_AI,
}


@strawberry.type(name="ModelComputeConfig")
class ModelComputeConfig:
    tp: int
    kv_cache_len: int
    max_seq_len: int


@strawberry.type(name="ModelUseCase")
class ModelUseCase:
    id: uuid.UUID
    key: str
    name: str
    description: str


# The use cases each model is attached to, for all the models of a list at once.
USE_CASES_OF_MODEL = children(
    lambda ids: select(orm.ModelService.model_id, orm.UseCase)
    .join(orm.ModelService, orm.ModelService.use_case_id == orm.UseCase.id)
    .where(orm.ModelService.model_id.in_(ids))
    .order_by(orm.UseCase.key)
)


@strawberry.type(name="Model")
class ModelType:
    row: strawberry.Private[orm.Model]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def key(self) -> str:
        return self.row.key

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def online(self) -> ModelOnline:
        return ModelOnline(self.row.status)

    @strawberry.field
    def error(self) -> str | None:
        return self.row.error

    @strawberry.field
    def is_external(self) -> bool:
        return self.row.is_external

    @strawberry.field
    def provider_name(self) -> ProviderName:
        return PROVIDER_NAMES.get(self.row.provider, ProviderName.HARMONY)

    @strawberry.field(description="local, open_ai, azure or google")
    def provider(self) -> str:
        return self.row.provider

    @strawberry.field
    def is_adapter(self) -> bool:
        return self.row.is_adapter

    @strawberry.field
    def is_training(self) -> bool:
        return self.row.is_training

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0

    @strawberry.field
    def size(self) -> int | None:
        return self.row.size

    @strawberry.field
    def kind(self) -> str:
        return self.row.kind

    @strawberry.field
    def compute_config(self) -> ModelComputeConfig | None:
        cfg = self.row.compute_config or {}
        return ModelComputeConfig(
            tp=int(cfg.get("tp", 1)),
            kv_cache_len=int(cfg.get("kv_cache_len", 0)),
            max_seq_len=int(cfg.get("max_seq_len", 2048)),
        )

    @strawberry.field(description="Use cases the model is attached to (those the caller can see)")
    async def use_cases(self, info: Info) -> list[ModelUseCase]:
        loaders = info.context.loaders
        return [
            ModelUseCase(id=u.id, key=u.key, name=u.name, description=u.description)
            for u in await loaders.readable(await loaders.load(USE_CASES_OF_MODEL, self.row.id))
        ]

    @strawberry.field
    def backbone(self) -> ModelType | None:
        return ModelType(row=self.row.backbone) if self.row.backbone is not None else None


@strawberry.type(name="ModelService")
class ModelServiceType:
    row: strawberry.Private[orm.ModelService]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def key(self) -> str:
        return self.row.model.key

    @strawberry.field
    def name(self) -> str:
        return self.row.model.name

    @strawberry.field
    def model(self) -> ModelType:
        return ModelType(row=self.row.model)

    @strawberry.field
    def is_default(self) -> bool:
        return self.row.is_default

    @strawberry.field
    def desired_online(self) -> bool:
        return self.row.desired_online

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0
