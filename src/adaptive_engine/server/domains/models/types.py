"""GraphQL types of the model registry (shared by the use case and models domains)."""

from __future__ import annotations

import enum
import uuid
from typing import TYPE_CHECKING, Annotated

import strawberry
from sqlalchemy import select
from strawberry.types import Info

from adaptive_engine.server.auth.principal import REGISTRY_PERMISSION
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.domains.models import gateway_config
from adaptive_engine.server.domains.models.service import made_by_job
from adaptive_engine.server.graphql.common import TimeRange
from adaptive_engine.server.graphql.loaders import children, row
from adaptive_engine.server.graphql.scalars import JSON
from adaptive_engine.server.timestamps import epoch

if TYPE_CHECKING:
    from adaptive_engine.server.domains.interactions.activity_types import ActivityType

# The interactions domain's types import this module: Activity is resolved lazily.
ACTIVITY = "adaptive_engine.server.domains.interactions.activity_types"


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
    "anthropic": ProviderName.ANTHROPIC,
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


@strawberry.type(name="ModelLineage", description="Where a model a job made came from")
class ModelLineage:
    job_id: uuid.UUID
    recipe: str | None = strawberry.field(description="Key of the recipe the job ran")
    use_case: str | None = strawberry.field(description="Key of the job's use case")
    base_model: str | None = strawberry.field(description="Key of the model it was trained from")
    args: JSON = strawberry.field(description="The job's arguments: its data (dataset, feedback filter) and settings")


# The use cases each model is attached to, for all the models of a list at once.
USE_CASES_OF_MODEL = children(
    lambda ids: (
        select(orm.ModelService.model_id, orm.UseCase)
        .join(orm.ModelService, orm.ModelService.use_case_id == orm.UseCase.id)
        .where(orm.ModelService.model_id.in_(ids))
        .order_by(orm.UseCase.key)
    )
)


@strawberry.type(name="ModelGatewayConfig", description="How the gateway calls the model (null: the server's default)")
class ModelGatewayConfig:
    connect_timeout_s: float | None
    first_byte_timeout_s: float | None
    total_timeout_s: float | None
    max_retries: int | None
    fallbacks: list[str] = strawberry.field(
        description="Model keys that serve, in order, when this one fails before answering"
    )
    defaults: strawberry.scalars.JSON = strawberry.field(description="Request fields sent when the caller gives none")


@strawberry.type(name="ModelPrices", description="Dollars per million tokens")
class ModelPricesType:
    input: float
    output: float
    cached_input: float


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

    @strawberry.field(description="What the model costs per million tokens (0 for local models unless priced)")
    def prices(self) -> ModelPricesType:
        return ModelPricesType(
            input=self.row.price_input or 0.0,
            output=self.row.price_output or 0.0,
            cached_input=self.row.price_cached_input or 0.0,
        )

    @strawberry.field
    def provider_name(self) -> ProviderName:
        return PROVIDER_NAMES.get(self.row.provider, ProviderName.HARMONY)

    @strawberry.field(description="local, open_ai, azure, google or anthropic")
    def provider(self) -> str:
        return self.row.provider

    @strawberry.field
    def is_adapter(self) -> bool:
        return self.row.is_adapter

    @strawberry.field
    def is_training(self) -> bool:
        return self.row.is_training

    @strawberry.field(description="Offered to every team (viewAll: false lists published models)")
    def is_published(self) -> bool:
        return self.row.is_published

    @strawberry.field(description="Recommended for production")
    def is_stable(self) -> bool:
        return self.row.is_stable

    @strawberry.field(description="Weights kept by this server (a local model), not served by a provider")
    def in_storage(self) -> bool:
        return not self.row.is_external

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

    @strawberry.field
    def gateway_config(self) -> ModelGatewayConfig:
        config = gateway_config.config_of(self.row)
        return ModelGatewayConfig(
            connect_timeout_s=config.connect_timeout_s,
            first_byte_timeout_s=config.first_byte_timeout_s,
            total_timeout_s=config.total_timeout_s,
            max_retries=config.max_retries,
            fallbacks=list(config.fallbacks),
            defaults=config.defaults,
        )

    @strawberry.field(description="Use cases the model is attached to (those the caller can see)")
    async def use_cases(self, info: Info) -> list[ModelUseCase]:
        loaders = info.context.loaders
        return [
            ModelUseCase(id=u.id, key=u.key, name=u.name, description=u.description)
            for u in await loaders.readable(await loaders.load(USE_CASES_OF_MODEL, self.row.id))
        ]

    @strawberry.field(description="The model's traffic in a time window, over the use cases the caller can read")
    async def activity(
        self, info: Info, timerange: TimeRange | None = None
    ) -> Annotated[ActivityType, strawberry.lazy(ACTIVITY)]:
        from adaptive_engine.server.domains.interactions.activity_types import (
            resolve_activity,
        )

        principal = info.context.principal
        return await resolve_activity(info.context.session, principal.sees_use_case, timerange, model_key=self.row.key)

    @strawberry.field
    def backbone(self) -> ModelType | None:
        return ModelType(row=self.row.backbone) if self.row.backbone is not None else None

    @strawberry.field(
        description="Which backend serves it: 'external' (the provider's API), 'local' (in the server "
        "process) or 'vllm' (a vLLM process of the server)"
    )
    def backend(self, info: Info) -> str:
        return "external" if self.row.is_external else info.context.platform.settings.inference_backend

    @strawberry.field(
        description="The job, recipe, data and base model that made it; null for a model no job made, "
        "or when the caller cannot read that job (its use case, or the registry's own jobs)"
    )
    async def lineage(self, info: Info) -> ModelLineage | None:
        made = self.row.lineage or {}
        job_id = made_by_job(self.row)
        if job_id is None:
            return None
        ctx = info.context
        if made.get("use_case"):
            use_case = await ctx.loaders.load(row(orm.UseCase.key), made["use_case"])
            if use_case is None or not await ctx.loaders.can("use_case:read", use_case.id):
                return None
        elif not ctx.principal.has_global(REGISTRY_PERMISSION):
            return None
        return ModelLineage(
            job_id=job_id,
            recipe=made.get("recipe"),
            use_case=made.get("use_case"),
            base_model=made.get("base_model"),
            args=made.get("args") or {},
        )


@strawberry.type(name="SystemPromptTemplate")
class SystemPromptTemplateType:
    row: strawberry.Private[orm.SystemPromptTemplate]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def template(self) -> str:
        return self.row.template

    @strawberry.field(description="The {{name}} placeholders, filled from the request's labels (or metadata)")
    def arguments(self) -> list[str]:
        return list(self.row.arguments or [])

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0

    @strawberry.field(description="Who created this version (their id; None once the user is deleted)")
    def created_by(self) -> uuid.UUID | None:
        return self.row.created_by_id

    @strawberry.field(description="The first version's id: every version of the template shares it")
    def family(self) -> uuid.UUID:
        return self.row.family_id

    @strawberry.field
    def version(self) -> int:
        return self.row.version


@strawberry.type(name="ModelService")
class ModelServiceType:
    row: strawberry.Private[orm.ModelService]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def key(self) -> str:
        return self.row.model.key

    @strawberry.field(description="The service's own name, or its model's")
    def name(self) -> str:
        return self.row.name or self.row.model.name

    @strawberry.field(description="Added as the system message of chat requests that bring none")
    def system_prompt_template(self) -> SystemPromptTemplateType | None:
        template = self.row.system_prompt_template
        return SystemPromptTemplateType(row=template) if template is not None else None

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
