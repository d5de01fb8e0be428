"""GraphQL of the model registry, with the official client's wire names."""

from __future__ import annotations

import enum

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import authenticated, requires
from adaptive_engine.server.domains.jobs.graphql import JobType, to_gql_job
from adaptive_engine.server.domains.jobs.records import JobRecord
from adaptive_engine.server.domains.models import gateway_config, prompt_templates, service
from adaptive_engine.server.domains.models.hub_import import import_hf_model
from adaptive_engine.server.domains.models.records import ModelRecord, ModelServiceRecord, PromptTemplateRecord
from adaptive_engine.server.domains.models.types import (
    ModelOnline,
    ModelServiceType,
    ModelType,
    SystemPromptTemplateType,
    to_gql_model,
    to_gql_model_service,
    to_gql_prompt_template,
)
from adaptive_engine.server.domains.usage.prices import Prices
from adaptive_engine.server.domains.usage.prices import check as check_prices
from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.graphql.common import IntegerNumericCondition
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.scalars import IdOrKey


@strawberry.enum(name="ExternalModelProviderName")
class ExternalModelProviderName(enum.Enum):
    OPEN_AI = "OPEN_AI"
    LEGACY_OPEN_AI = "LEGACY_OPEN_AI"
    GOOGLE = "GOOGLE"
    ANTHROPIC = "ANTHROPIC"
    AZURE = "AZURE"


@strawberry.enum(name="ModelCapabilityFilter")
class ModelCapabilityFilter(enum.Enum):
    Embedding = "Embedding"
    TextGeneration = "TextGeneration"
    ImageUnderstanding = "ImageUnderstanding"
    Reasoning = "Reasoning"
    Regression = "Regression"


# Capabilities our model kinds have.
CAPABILITY_KINDS = {
    ModelCapabilityFilter.TextGeneration: "chat",
    ModelCapabilityFilter.Reasoning: "chat",
    ModelCapabilityFilter.Embedding: "embedding",
}


@strawberry.input(name="CapabilityFilter")
class CapabilityFilter:
    any: list[ModelCapabilityFilter] | None = None
    all: list[ModelCapabilityFilter] | None = None


@strawberry.input(name="ModelFilter")
class ModelFilter:
    in_storage: bool | None = None
    available: bool | None = None
    trainable: bool | None = None
    capabilities: CapabilityFilter | None = None
    view_all: bool | None = None
    online: list[ModelOnline] | None = None
    published: bool | None = None
    size: IntegerNumericCondition | None = None

    def to_filters(self) -> service.ModelFilters:
        """viewAll is applied by the resolver (it depends on the caller)."""
        kinds = None
        if self.capabilities and self.capabilities.any:
            kinds = sorted({CAPABILITY_KINDS[c] for c in self.capabilities.any if c in CAPABILITY_KINDS})
        if self.capabilities and self.capabilities.all:
            # A model has one kind: only capabilities that all map to the same known kind can be met together.
            wanted = {CAPABILITY_KINDS.get(c) for c in self.capabilities.all}
            only = wanted.pop() if len(wanted) == 1 else None
            kinds = [only] if only is not None else []
        return service.ModelFilters(
            online=[o.value for o in self.online] if self.online else None,
            kinds=kinds,
            available=self.available,
            trainable=self.trainable,
            in_storage=self.in_storage,
            published=self.published,
            size={k: v for k, v in vars(self.size).items() if v is not None} if self.size else None,
        )


@strawberry.input(name="OpenAIProviderDataInput")
class OpenAIProviderDataInput:
    api_key: str
    external_model_id: str
    endpoint: str | None = None


@strawberry.input(name="GoogleProviderDataInput")
class GoogleProviderDataInput:
    api_key: str
    external_model_id: str
    endpoint: str | None = None


@strawberry.input(name="AnthropicProviderDataInput")
class AnthropicProviderDataInput:
    api_key: str
    external_model_id: str
    endpoint: str | None = None


@strawberry.input(name="AzureProviderDataInput", description="Azure OpenAI: the deployment name is the model id")
class AzureProviderDataInput:
    api_key: str
    external_model_id: str
    endpoint: str
    api_version: str | None = None


@strawberry.input(name="ModelProviderDataInput")
class ModelProviderDataInput:
    open_ai: OpenAIProviderDataInput | None = strawberry.field(name="openAI", default=None)
    legacy_open_ai: OpenAIProviderDataInput | None = strawberry.field(name="legacyOpenAI", default=None)
    google: GoogleProviderDataInput | None = None
    anthropic: AnthropicProviderDataInput | None = None
    azure: AzureProviderDataInput | None = None


@strawberry.input(
    name="ModelPricesInput", description="Dollars per million tokens (unset: 0 on add, unchanged on update)"
)
class ModelPricesInput:
    input: float | None = None
    output: float | None = None
    cached_input: float | None = strawberry.field(
        default=None, description="Prompt tokens served from the provider's cache"
    )

    def values(self) -> dict[str, float]:
        return {
            name: value
            for name, value in (("input", self.input), ("output", self.output), ("cached_input", self.cached_input))
            if value is not None
        }

    def prices(self) -> Prices:
        return check_prices(self.values(), "prices")


@strawberry.input(name="AddExternalModelInput")
class AddExternalModelInput:
    name: str
    provider: ExternalModelProviderName
    provider_data: ModelProviderDataInput | None = None
    description: str | None = None
    key: str | None = None
    embedding: bool = strawberry.field(default=False, description="An embedding model rather than a chat model")
    prices: ModelPricesInput | None = strawberry.field(default=None, description="Unset: the price table's, else 0")


@strawberry.input(name="AddModelInput")
class AddModelInput:
    path: str
    name: str
    key: str | None = None
    prices: ModelPricesInput | None = strawberry.field(default=None, description="Unset: the price table's, else 0")


@strawberry.input(name="AddHFModelInput")
class AddHFModelInput:
    model_id: str = strawberry.field(
        description="A model hub id (owner/name), or an absolute path to a model folder on the server"
    )
    output_model_name: str
    hf_token: str
    output_model_key: str | None = None
    compute_pool: IdOrKey | None = None
    num_gpus: int = 0


@strawberry.input(name="AddModelToUseCaseInput")
class AddModelToUseCaseInput:
    use_case: str
    model: str


@strawberry.input(name="ModelPlacementInput")
class ModelPlacementInput:
    compute_pools: list[str]
    max_ttft_ms: int | None = None

    def to_dict(self) -> dict:
        return {"compute_pools": list(self.compute_pools), "max_ttft_ms": self.max_ttft_ms}


@strawberry.input(name="DeployModelInput")
class DeployModelInput:
    use_case: str
    model: str
    placement: ModelPlacementInput | None = None
    wait: bool = False


@strawberry.input(name="RemoveModelFromUseCaseInput")
class RemoveModelFromUseCaseInput:
    use_case: str
    model: str


@strawberry.input(name="UpdateModelService")
class UpdateModelService:
    use_case: str
    model_service: str
    is_default: bool | None = None
    desired_online: bool | None = None
    name: str | None = None
    system_prompt_template: strawberry.scalars.JSON | None = None
    placement: ModelPlacementInput | None = None
    tool_providers: list[str] | None = strawberry.field(
        default=None, description="Not supported: this platform has no tool providers (refused when given)"
    )


@strawberry.input(name="UpdateModelInput")
class UpdateModelInput:
    model: str
    name: str | None = None
    published: bool | None = None
    stable: bool | None = None


@strawberry.input(name="DeleteModelInput")
class DeleteModelInput:
    model: str


@strawberry.input(name="SystemPromptTemplateCreate")
class SystemPromptTemplateCreate:
    name: str
    template: str


@strawberry.input(name="SystemPromptTemplateUpdate")
class SystemPromptTemplateUpdate:
    system_prompt_template: strawberry.scalars.JSON = strawberry.field(
        description="The version to derive from (its id)"
    )
    template: str
    name: str | None = None
    update_model_services: bool = strawberry.field(
        default=False, description="Move the model services using any version of this template to the new one"
    )


@strawberry.input(name="ModelComputeConfigInput")
class ModelComputeConfigInput:
    tp: int | None = None
    kv_cache_len: int | None = None
    max_seq_len: int | None = None


@strawberry.input(
    name="ModelGatewayConfigInput",
    description="Null: unchanged; a timeout of 0: the server's default; [] / {}: no fallbacks / defaults",
)
class ModelGatewayConfigInput:
    connect_timeout_s: float | None = None
    first_byte_timeout_s: float | None = None
    total_timeout_s: float | None = None
    max_retries: int | None = None
    fallbacks: list[str] | None = None
    defaults: strawberry.scalars.JSON | None = None


# The wire provider enum -> our provider names, and which input field carries its data.
_PROVIDERS = {
    ExternalModelProviderName.OPEN_AI: ("open_ai", "open_ai"),
    ExternalModelProviderName.LEGACY_OPEN_AI: ("open_ai", "legacy_open_ai"),
    ExternalModelProviderName.GOOGLE: ("google", "google"),
    ExternalModelProviderName.AZURE: ("azure", "azure"),
    ExternalModelProviderName.ANTHROPIC: ("anthropic", "anthropic"),
}


@strawberry.type
class ModelQuery:
    @strawberry.field(
        extensions=[authenticated()],
        description="filter.viewAll false: only published models and those of use cases you see",
    )
    async def models(self, info: Info[Context, None], filter: ModelFilter | None = None) -> list[ModelType]:  # noqa: A002
        ctx = info.context
        rows = await service.list_models(ctx.session, filter.to_filters() if filter else None)
        if filter is not None and filter.view_all is False:
            rows = await service.visible_to(ctx.session, ctx.principal, rows)
        return [to_gql_model(ModelRecord.of(m)) for m in rows]

    @strawberry.field(
        extensions=[authenticated()], description="Every version of every template (or of one family: any version's id)"
    )
    async def system_prompt_templates(
        self, info: Info[Context, None], family: strawberry.scalars.JSON | None = None
    ) -> list[SystemPromptTemplateType]:
        return [
            to_gql_prompt_template(PromptTemplateRecord.of(t))
            for t in await prompt_templates.list_templates(info.context.session, family)
        ]

    @strawberry.field(extensions=[authenticated()])
    async def model(self, info: Info[Context, None], id_or_key: IdOrKey) -> ModelType | None:
        return to_gql_model(ModelRecord.of(await service.get_model(info.context.session, id_or_key)))


@strawberry.type
class ModelMutation:
    @strawberry.mutation(extensions=[requires("model:register")])
    async def add_external_model(self, info: Info[Context, None], input: AddExternalModelInput) -> ModelType:
        if input.provider not in _PROVIDERS:
            raise InvalidInput(
                f"provider {input.provider.value} is not supported: use OPEN_AI, GOOGLE, AZURE or ANTHROPIC"
            )
        provider, field = _PROVIDERS[input.provider]
        data = getattr(input.provider_data, field, None) if input.provider_data else None
        if data is None:
            raise InvalidInput(f"providerData.{field} is required for provider {input.provider.value}")
        model = await service.add_external_model(
            info.context.session,
            info.context.principal,
            name=input.name,
            provider=provider,
            external_model_id=data.external_model_id,
            api_key=data.api_key,
            endpoint=data.endpoint,
            api_version=getattr(data, "api_version", None),
            key=input.key,
            kind="embedding" if input.embedding else "chat",
            guard=info.context.platform.outbound,
            prices=input.prices.prices() if input.prices else None,
            price_table=info.context.platform.settings.price_table,
        )
        return to_gql_model(ModelRecord.of(model))

    @strawberry.mutation(extensions=[requires("model:register")])
    async def add_model(self, info: Info[Context, None], input: AddModelInput) -> ModelType:
        ctx = info.context
        model = await service.add_local_model(
            ctx.session,
            ctx.principal,
            path=input.path,
            name=input.name,
            key=input.key,
            prices=input.prices.prices() if input.prices else None,
            price_table=ctx.platform.settings.price_table,
        )
        return to_gql_model(ModelRecord.of(model))

    @strawberry.mutation(
        extensions=[requires("model:register")],
        description="Set a model's prices (dollars per million tokens); unset fields are kept",
    )
    async def update_model_prices(
        self, info: Info[Context, None], id_or_key: IdOrKey, input: ModelPricesInput
    ) -> ModelType:
        ctx = info.context
        model = await service.update_prices(ctx.session, ctx.principal, id_or_key, input.values())
        return to_gql_model(ModelRecord.of(model))

    @strawberry.mutation(
        extensions=[requires("model:register")],
        description="Import a model from the model hub (or a model folder on the server) with a MODEL_CONVERSION job",
    )
    async def import_hf_model(self, info: Info[Context, None], input: AddHFModelInput) -> JobType:
        ctx = info.context
        job = await import_hf_model(
            ctx.session,
            ctx.principal,
            ctx.platform.file_store,
            model_id=input.model_id,
            name=input.output_model_name,
            key=input.output_model_key,
            hf_token=input.hf_token,
            compute_pool=input.compute_pool,
            num_gpus=input.num_gpus,
            runner=ctx.platform.job_runner,
        )
        return to_gql_job(JobRecord.of(job))

    @strawberry.mutation(extensions=[requires("model:deploy", use_case="input.use_case")])
    async def add_model_to_use_case(self, info: Info[Context, None], input: AddModelToUseCaseInput) -> bool:
        await service.attach(info.context.session, info.context.principal, input.use_case, input.model)
        return True

    @strawberry.mutation(extensions=[requires("model:deploy", use_case="input.use_case")])
    async def deploy_model(self, info: Info[Context, None], input: DeployModelInput) -> ModelServiceType:
        ctx = info.context
        inference = ctx.platform.inference
        deployed = await service.deploy(
            ctx.session,
            ctx.principal,
            inference,
            use_case_key=input.use_case,
            model_key=input.model,
            placement=input.placement.to_dict() if input.placement else None,
        )
        # The loader reads the PENDING row from its own session: commit first.
        await ctx.session.commit()
        await service.request_load(inference, deployed.model)
        if input.wait:
            await service.wait_until_online(ctx.platform.sessionmaker, deployed.model_id)
            await ctx.session.refresh(deployed.model, ["status", "error"])
        return to_gql_model_service(ModelServiceRecord.of(deployed))

    @strawberry.mutation(extensions=[requires("model:deploy", use_case="input.use_case")])
    async def remove_model_from_use_case(self, info: Info[Context, None], input: RemoveModelFromUseCaseInput) -> bool:
        return await service.detach(info.context.session, info.context.principal, input.use_case, input.model)

    @strawberry.mutation(extensions=[requires("model:deploy", use_case="input.use_case")])
    async def update_model_service(self, info: Info[Context, None], input: UpdateModelService) -> ModelServiceType:
        if input.tool_providers is not None:
            raise InvalidInput("toolProviders: this platform has no tool providers; pass tools in the chat request")
        ctx = info.context
        template = input.system_prompt_template
        updated = await service.update_service(
            ctx.session,
            ctx.principal,
            use_case_key=input.use_case,
            model_service=input.model_service,
            is_default=input.is_default,
            desired_online=input.desired_online,
            placement=input.placement.to_dict() if input.placement else None,
            name=input.name,
            # "" removes the service's template.
            system_prompt_template=template if template != "" else None,
            clear_system_prompt_template=template == "",
        )
        if input.desired_online:
            await ctx.session.commit()
            await service.request_load(ctx.platform.inference, updated.model)
        return to_gql_model_service(ModelServiceRecord.of(updated))

    @strawberry.mutation(
        extensions=[requires("model:register")], description="Rename a model, publish it, mark it stable"
    )
    async def update_model(self, info: Info[Context, None], input: UpdateModelInput) -> ModelType:
        ctx = info.context
        model = await service.update_model(
            ctx.session, ctx.principal, input.model, name=input.name, published=input.published, stable=input.stable
        )
        return to_gql_model(ModelRecord.of(model))

    @strawberry.mutation(
        extensions=[requires("model:register")],
        description="Delete a model no use case, A/B test, judge or adapter uses; frees the weights this server stored",
    )
    async def delete_model(self, info: Info[Context, None], input: DeleteModelInput) -> str:
        ctx = info.context
        owned = [ctx.platform.file_store.root, ctx.platform.job_runner.jobs_dir]
        model, folder = await service.delete_model(ctx.session, ctx.principal, input.model, owned)
        await ctx.session.commit()
        if ctx.platform.inference is not None:
            await ctx.platform.inference.unload(model.id)
        service.remove_weights(folder)
        return f"model '{model.key}' deleted" + (" and its weights removed" if folder is not None else "")

    @strawberry.mutation(extensions=[requires("model:register")])
    async def create_system_prompt_template(
        self, info: Info[Context, None], input: SystemPromptTemplateCreate
    ) -> SystemPromptTemplateType:
        ctx = info.context
        row = await prompt_templates.create(ctx.session, ctx.principal, name=input.name, template=input.template)
        return to_gql_prompt_template(PromptTemplateRecord.of(row))

    @strawberry.mutation(
        extensions=[requires("model:register")],
        description="Add a version to a template's family (templates are never edited in place)",
    )
    async def derive_system_prompt_template(
        self, info: Info[Context, None], input: SystemPromptTemplateUpdate
    ) -> SystemPromptTemplateType:
        ctx = info.context
        row = await prompt_templates.derive(
            ctx.session,
            ctx.principal,
            base=input.system_prompt_template,
            template=input.template,
            name=input.name,
            update_model_services=input.update_model_services,
        )
        return to_gql_prompt_template(PromptTemplateRecord.of(row))

    @strawberry.mutation(extensions=[requires("model:register")])
    async def update_model_compute_config(
        self, info: Info[Context, None], id_or_key: IdOrKey, input: ModelComputeConfigInput
    ) -> ModelType:
        ctx = info.context
        changes = {"tp": input.tp, "kv_cache_len": input.kv_cache_len, "max_seq_len": input.max_seq_len}
        model = await service.update_compute_config(
            ctx.session,
            ctx.principal,
            id_or_key,
            changes,
            tensor_parallel=ctx.platform.settings.inference_backend == "vllm",
        )
        await ctx.session.commit()
        if ctx.platform.inference is not None:  # a loaded local model takes it now; others when they load
            ctx.platform.inference.apply_compute_config(model)
        return to_gql_model(ModelRecord.of(model))

    @strawberry.mutation(
        extensions=[requires("model:register")],
        description="Set how the gateway calls a model: upstream timeouts, retries, fallbacks, default fields",
    )
    async def update_model_gateway_config(
        self, info: Info[Context, None], id_or_key: IdOrKey, input: ModelGatewayConfigInput
    ) -> ModelType:
        ctx = info.context
        model = await gateway_config.update_gateway_config(
            ctx.session,
            ctx.principal,
            id_or_key,
            connect_timeout_s=input.connect_timeout_s,
            first_byte_timeout_s=input.first_byte_timeout_s,
            total_timeout_s=input.total_timeout_s,
            max_retries=input.max_retries,
            fallbacks=input.fallbacks,
            defaults=input.defaults,
        )
        # Committed before this process's backend is rebuilt from the row.
        await ctx.session.commit()
        inference = ctx.platform.inference
        if inference is not None:
            await inference.reconfigure(model)
        return to_gql_model(ModelRecord.of(model))

    @strawberry.mutation(extensions=[requires("model:deploy")])
    async def terminate_model(self, info: Info[Context, None], id_or_key: IdOrKey, force: bool = False) -> str:
        ctx = info.context
        model = await service.terminate(ctx.session, ctx.principal, id_or_key, force)
        await ctx.session.commit()
        await service.release(ctx.platform.inference, model)
        return f"model '{model.key}' terminated"
