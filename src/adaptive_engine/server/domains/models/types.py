"""GraphQL types of the model registry (shared by the use case and models domains)."""

from __future__ import annotations

import enum
import uuid
from typing import TYPE_CHECKING, Annotated

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.principal import REGISTRY_PERMISSION
from adaptive_engine.server.domains.models import service
from adaptive_engine.server.domains.models.records import ModelRecord, ModelServiceRecord, PromptTemplateRecord
from adaptive_engine.server.domains.use_cases.service import use_cases_by_key
from adaptive_engine.server.graphql.common import TimeRange
from adaptive_engine.server.graphql.loaders import lookup
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


# What the fields of a model list, loaded for all the models of a list at once.
USE_CASES_OF_MODEL = lookup(service.use_cases_of_models, missing=list)
MODELS = lookup(service.models_by_id)
USE_CASES_BY_KEY = lookup(use_cases_by_key)


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
    id: uuid.UUID
    key: str
    name: str
    online: ModelOnline
    error: str | None
    is_external: bool
    prices: ModelPricesType = strawberry.field(
        description="What the model costs per million tokens (0 for local models unless priced)"
    )
    provider_name: ProviderName
    provider: str = strawberry.field(description="local, open_ai, azure, google or anthropic")
    is_adapter: bool
    is_training: bool
    is_published: bool = strawberry.field(description="Offered to every team (viewAll: false lists published models)")
    is_stable: bool = strawberry.field(description="Recommended for production")
    in_storage: bool = strawberry.field(
        description="Weights kept by this server (a local model), not served by a provider"
    )
    created_at: int
    size: int | None
    kind: str
    compute_config: ModelComputeConfig | None
    gateway_config: ModelGatewayConfig
    record: strawberry.Private[ModelRecord]

    @strawberry.field(description="Use cases the model is attached to (those the caller can see)")
    async def use_cases(self, info: Info) -> list[ModelUseCase]:
        loaders = info.context.loaders
        return [
            ModelUseCase(id=u.id, key=u.key, name=u.name, description=u.description)
            for u in await loaders.readable(await loaders.load(USE_CASES_OF_MODEL, self.id))
        ]

    @strawberry.field(description="The model's traffic in a time window, over the use cases the caller can read")
    async def activity(
        self, info: Info, timerange: TimeRange | None = None
    ) -> Annotated[ActivityType, strawberry.lazy(ACTIVITY)]:
        from adaptive_engine.server.domains.interactions.activity_types import (
            resolve_activity,
        )

        principal = info.context.principal
        return await resolve_activity(info.context.session, principal.sees_use_case, timerange, model_key=self.key)

    @strawberry.field
    async def backbone(self, info: Info) -> ModelType | None:
        if self.record.backbone_id is None:
            return None
        found = await info.context.loaders.load(MODELS, self.record.backbone_id)
        return to_gql_model(found) if found is not None else None

    @strawberry.field(
        description="Which backend serves it: 'external' (the provider's API), 'local' (in the server "
        "process) or 'vllm' (a vLLM process of the server)"
    )
    def backend(self, info: Info) -> str:
        return "external" if self.is_external else info.context.platform.settings.inference_backend

    @strawberry.field(
        description="The job, recipe, data and base model that made it; null for a model no job made, "
        "or when the caller cannot read that job (its use case, or the registry's own jobs)"
    )
    async def lineage(self, info: Info) -> ModelLineage | None:
        made = self.record.lineage
        job_id = self.record.made_by_job
        if job_id is None:
            return None
        ctx = info.context
        if made.get("use_case"):
            use_case = await ctx.loaders.load(USE_CASES_BY_KEY, made["use_case"])
            if use_case is None or not await ctx.loaders.can("use_case:read", use_case.id):
                return None
        elif not ctx.principal.has_global(REGISTRY_PERMISSION):
            return None
        return ModelLineage(
            job_id=job_id,
            recipe=made.get("recipe"),
            use_case=made.get("use_case"),
            base_model=made.get("base_model"),
            args=JSON(made.get("args") or {}),
        )


def to_gql_model(model: ModelRecord) -> ModelType:
    cfg = model.compute_config
    gateway = model.gateway_config
    return ModelType(
        id=model.id,
        key=model.key,
        name=model.name,
        online=ModelOnline(model.status),
        error=model.error,
        is_external=model.is_external,
        prices=ModelPricesType(
            input=model.price_input, output=model.price_output, cached_input=model.price_cached_input
        ),
        provider_name=PROVIDER_NAMES.get(model.provider, ProviderName.HARMONY),
        provider=model.provider,
        is_adapter=model.is_adapter,
        is_training=model.is_training,
        is_published=model.is_published,
        is_stable=model.is_stable,
        in_storage=not model.is_external,
        created_at=epoch(model.created_at) or 0,
        size=model.size,
        kind=model.kind,
        compute_config=ModelComputeConfig(
            tp=int(cfg.get("tp", 1)),
            kv_cache_len=int(cfg.get("kv_cache_len", 0)),
            max_seq_len=int(cfg.get("max_seq_len", 2048)),
        ),
        gateway_config=ModelGatewayConfig(
            connect_timeout_s=gateway.connect_timeout_s,
            first_byte_timeout_s=gateway.first_byte_timeout_s,
            total_timeout_s=gateway.total_timeout_s,
            max_retries=gateway.max_retries,
            fallbacks=list(gateway.fallbacks),
            defaults=JSON(gateway.defaults),
        ),
        record=model,
    )


@strawberry.type(name="SystemPromptTemplate")
class SystemPromptTemplateType:
    id: uuid.UUID
    name: str
    template: str
    arguments: list[str] = strawberry.field(
        description="The {{name}} placeholders, filled from the request's labels (or metadata)"
    )
    created_at: int
    created_by: uuid.UUID | None = strawberry.field(
        description="Who created this version (their id; None once the user is deleted)"
    )
    family: uuid.UUID = strawberry.field(description="The first version's id: every version of the template shares it")
    version: int


def to_gql_prompt_template(template: PromptTemplateRecord) -> SystemPromptTemplateType:
    return SystemPromptTemplateType(
        id=template.id,
        name=template.name,
        template=template.template,
        arguments=list(template.arguments),
        created_at=epoch(template.created_at) or 0,
        created_by=template.created_by_id,
        family=template.family_id,
        version=template.version,
    )


@strawberry.type(name="ModelService")
class ModelServiceType:
    id: uuid.UUID
    key: str
    name: str = strawberry.field(description="The service's own name, or its model's")
    system_prompt_template: SystemPromptTemplateType | None = strawberry.field(
        description="Added as the system message of chat requests that bring none"
    )
    model: ModelType
    is_default: bool
    desired_online: bool
    created_at: int


def to_gql_model_service(service: ModelServiceRecord) -> ModelServiceType:
    template = service.system_prompt_template
    return ModelServiceType(
        id=service.id,
        key=service.model.key,
        name=service.name,
        system_prompt_template=to_gql_prompt_template(template) if template is not None else None,
        model=to_gql_model(service.model),
        is_default=service.is_default,
        desired_online=service.desired_online,
        created_at=epoch(service.created_at) or 0,
    )
