from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping
from typing import Any, Literal

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL, Sleep
from adaptive_engine.sdk.errors import ServerError
from adaptive_engine.sdk.resources.jobs import JOB_FIELDS
from adaptive_engine.sdk.types import Job, Model, ModelService

MODEL_FIELDS = """
  id key name online error isExternal providerName provider isAdapter isTraining createdAt size
  isPublished isStable inStorage
  computeConfig { tp kvCacheLen maxSeqLen }
  gatewayConfig { connectTimeoutS firstByteTimeoutS totalTimeoutS maxRetries fallbacks defaults }
  useCases { id key name }
  prices { input output cachedInput }
  backbone { id key name online error isExternal providerName isAdapter isTraining createdAt size }
"""
TEMPLATE_FIELDS = "id name template arguments createdAt createdBy family version"
SERVICE_FIELDS = (
    f"id key name isDefault desiredOnline createdAt model {{ {MODEL_FIELDS} }} "
    f"systemPromptTemplate {{ {TEMPLATE_FIELDS} }}"
)

_PROVIDERS = {
    "open_ai": ("OPEN_AI", "openAI"),
    "google": ("GOOGLE", "google"),
    "azure": ("AZURE", "azure"),
    "anthropic": ("ANTHROPIC", "anthropic"),
}
_CAPABILITIES = {"chat": "TextGeneration", "embedding": "Embedding"}


def _placement(placement: dict[str, Any] | None) -> dict[str, Any] | None:
    if placement is None:
        return None
    return {
        "computePools": placement.get("compute_pools", placement.get("computePools")),
        "maxTtftMs": placement.get("max_ttft_ms", placement.get("maxTtftMs")),
    }


def _prices(prices: Mapping[str, float | None] | None) -> dict[str, Any] | None:
    if prices is None:
        return None
    unknown = set(prices) - {"input", "output", "cached_input"}
    if unknown:
        raise ValueError(f"unknown price field(s) {sorted(unknown)}: use input, output, cached_input")
    return {"input": prices.get("input"), "output": prices.get("output"), "cachedInput": prices.get("cached_input")}


class Models(Resource[C]):
    """The model registry and the models attached to use cases."""

    @operation
    def list(self, filter: dict[str, Any] | None = None) -> Returns[list[Model]]:
        """Models in the registry. ``filter`` keys: online (list of ONLINE/PENDING/OFFLINE/ERROR),
        kind ("chat" or "embedding"), available, trainable, in_storage (weights on this server), published,
        size (bounds in bytes: {"gte": ..., "lt": ...}), view_all (False: only published models and those
        of use cases you see)."""
        wire: dict[str, Any] = {}
        for name, value in (filter or {}).items():
            if name == "kind":
                wire["capabilities"] = {"any": [_CAPABILITIES[value]]}
            elif name == "online":
                wire["online"] = [value] if isinstance(value, str) else list(value)
            elif name in ("in_storage", "view_all"):
                wire["inStorage" if name == "in_storage" else "viewAll"] = value
            else:
                wire[name] = value
        data = yield GraphQL(
            f"query Models($f: ModelFilter) {{ models(filter: $f) {{ {MODEL_FIELDS} }} }}", {"f": wire}
        )
        return [Model.model_validate(m) for m in data["models"]]

    @operation
    def get(self, model: str) -> Returns[Model]:
        """A model by key or id."""
        return (yield from self._get(model))

    def _get(self, model: str) -> Returns[Model]:
        data = yield GraphQL(f"query Model($m: IdOrKey!) {{ model(idOrKey: $m) {{ {MODEL_FIELDS} }} }}", {"m": model})
        return Model.model_validate(data["model"])

    @operation
    def add_external(
        self,
        name: str,
        external_model_id: str,
        api_key: str,
        provider: Literal["open_ai", "google", "azure", "anthropic"],
        endpoint: str | None = None,
        api_version: str | None = None,
        key: str | None = None,
        embedding: bool = False,
        prices: dict[str, float] | None = None,
    ) -> Returns[Model]:
        """Register a model served by an external provider. ``endpoint`` overrides the provider's URL
        (any OpenAI-compatible server for ``open_ai``); Azure needs it, and ``external_model_id`` is the
        Azure deployment name. The API key is stored on the server and never returned. ``prices``: dollars
        per million tokens, ``{"input", "output", "cached_input"}`` (unset: the server's price table, else 0)."""
        if provider not in _PROVIDERS:
            raise ValueError(f"provider must be one of {', '.join(_PROVIDERS)}")
        enum_value, field = _PROVIDERS[provider]
        data_input: dict[str, Any] = {"apiKey": api_key, "externalModelId": external_model_id, "endpoint": endpoint}
        if provider == "azure":
            if not endpoint:
                raise ValueError("an Azure model needs its endpoint")
            data_input["apiVersion"] = api_version
        variables = {
            "input": {
                "name": name,
                "key": key,
                "provider": enum_value,
                "embedding": embedding,
                "providerData": {field: data_input},
                "prices": _prices(prices),
            }
        }
        query = (
            "mutation AddExternalModel($input: AddExternalModelInput!) { addExternalModel(input: $input)"
            f" {{ {MODEL_FIELDS} }} }}"
        )
        data = yield GraphQL(query, variables)
        return Model.model_validate(data["addExternalModel"])

    @operation
    def add_local(
        self, path: str, name: str, key: str | None = None, prices: dict[str, float] | None = None
    ) -> Returns[Model]:
        """Register a model folder that is on the server (Hugging Face layout or a PEFT adapter); it costs
        nothing unless ``prices`` (as for :meth:`add_external`) or the server's price table say otherwise."""
        query = f"mutation AddModel($input: AddModelInput!) {{ addModel(input: $input) {{ {MODEL_FIELDS} }} }}"
        data = yield GraphQL(query, {"input": {"path": path, "name": name, "key": key, "prices": _prices(prices)}})
        return Model.model_validate(data["addModel"])

    @operation
    def update_prices(
        self, model: str, input: float | None = None, output: float | None = None, cached_input: float | None = None
    ) -> Returns[Model]:
        """Set a model's prices in dollars per million tokens (prompt, completion, cached prompt); None keeps one."""
        query = (
            f"mutation UpdateModelPrices($m: IdOrKey!, $input: ModelPricesInput!) "
            f"{{ updateModelPrices(idOrKey: $m, input: $input) {{ {MODEL_FIELDS} }} }}"
        )
        data = yield GraphQL(
            query, {"m": model, "input": _prices({"input": input, "output": output, "cached_input": cached_input})}
        )
        return Model.model_validate(data["updateModelPrices"])

    @operation
    def add_hf_model(
        self,
        hf_model_id: str,
        output_model_name: str,
        output_model_key: str,
        hf_token: str,
        compute_pool: str | None = None,
    ) -> Returns[Job]:
        """Import a model from the Hugging Face hub into the registry; returns the MODEL_CONVERSION job
        that downloads it (with ``hf_token``, for gated or private models), checks it is a causal language
        model and registers it. ``hf_model_id`` may also be an absolute path to a model folder on the
        server. Follow the job with ``jobs.get``; once it is COMPLETED, ``attach`` serves the model."""
        variables = {
            "input": {
                "modelId": hf_model_id,
                "outputModelName": output_model_name,
                "outputModelKey": output_model_key,
                "hfToken": hf_token,
                "computePool": compute_pool,
            }
        }
        query = f"mutation AddHFModel($input: AddHFModelInput!) {{ importHfModel(input: $input) {{ {JOB_FIELDS} }} }}"
        data = yield GraphQL(query, variables)
        return Job.model_validate(data["importHfModel"])

    @operation
    def add_to_use_case(self, model: str, use_case: str | None = None) -> Returns[bool]:
        """Attach a model to a use case without deploying it."""
        query = "mutation AddModelToUseCase($input: AddModelToUseCaseInput!) { addModelToUseCase(input: $input) }"
        data = yield GraphQL(query, {"input": {"model": model, "useCase": self.use_case_key(use_case)}})
        return bool(data["addModelToUseCase"])

    @operation
    def deploy(
        self,
        model: str,
        wait: bool = False,
        make_default: bool = False,
        use_case: str | None = None,
        placement: dict[str, Any] | None = None,
        on_progress: Callable[[Model], None] | None = None,
        poll_interval: float = 1.0,
    ) -> Returns[ModelService]:
        """Attach (if needed) and deploy a model on a use case; ``wait`` blocks until it is online and
        raises with the backend's reason if loading fails. With ``on_progress``, the wait is done here:
        ``on_progress(model)`` is called about every ``poll_interval`` seconds with the model (its status in
        ``online``) until it is ONLINE."""
        return (
            yield from self._deploy_and_wait(model, wait, make_default, use_case, placement, on_progress, poll_interval)
        )

    @operation
    def attach(
        self,
        model: str,
        wait: bool = False,
        make_default: bool = False,
        use_case: str | None = None,
        placement: dict[str, Any] | None = None,
        on_progress: Callable[[Model], None] | None = None,
        poll_interval: float = 1.0,
    ) -> Returns[ModelService]:
        """Attach a model to a use case and deploy it (same as ``deploy``, ``on_progress`` included)."""
        return (
            yield from self._deploy_and_wait(model, wait, make_default, use_case, placement, on_progress, poll_interval)
        )

    def _deploy_and_wait(
        self,
        model: str,
        wait: bool,
        make_default: bool,
        use_case: str | None,
        placement: dict[str, Any] | None,
        on_progress: Callable[[Model], None] | None,
        poll_interval: float,
    ) -> Returns[ModelService]:
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        service = yield from self._deploy(model, wait and on_progress is None, use_case, placement)
        if wait and on_progress is not None:
            service.model = yield from self._follow_load(model, on_progress, poll_interval)
        if make_default:
            service = yield from self._update(model, use_case, is_default=True)
        return service

    def _follow_load(self, model: str, on_progress: Callable[[Model], None], poll_interval: float) -> Returns[Model]:
        while True:
            current = yield from self._get(model)
            on_progress(current)
            if current.online == "ONLINE":
                return current
            if current.online == "ERROR":
                raise ServerError(
                    f"model '{current.key}' failed to load: {current.error or 'unknown error'}", code="UPSTREAM_ERROR"
                )
            yield Sleep(poll_interval)

    @operation
    def detach(self, model: str, use_case: str | None = None) -> Returns[bool]:
        """Detach a model from a use case."""
        query = (
            "mutation RemoveModelFromUseCase($input: RemoveModelFromUseCaseInput!) {"
            " removeModelFromUseCase(input: $input) }"
        )
        data = yield GraphQL(query, {"input": {"model": model, "useCase": self.use_case_key(use_case)}})
        return bool(data["removeModelFromUseCase"])

    @operation
    def update(
        self,
        model: str,
        is_default: bool | None = None,
        desired_online: bool | None = None,
        use_case: str | None = None,
        placement: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        system_prompt_template: str | None = None,
    ) -> Returns[ModelService]:
        """Change how a model serves a use case: default or not, online or not, placement (local compute
        pools), the service's name, and its system prompt template (a template version's id; "" removes it),
        added as the system message of chat requests that bring none."""
        return (
            yield from self._update(
                model,
                use_case,
                is_default=is_default,
                desired_online=desired_online,
                placement=_placement(placement),
                name=name,
                system_prompt_template=system_prompt_template,
            )
        )

    @operation
    def update_model(
        self, model: str, *, name: str | None = None, published: bool | None = None, stable: bool | None = None
    ) -> Returns[Model]:
        """Rename a model in the registry, publish it (offered to every team) or mark it stable."""
        query = (
            f"mutation UpdateModelRow($input: UpdateModelInput!) {{ updateModel(input: $input) {{ {MODEL_FIELDS} }} }}"
        )
        wire = {"model": model, "name": name, "published": published, "stable": stable}
        data = yield GraphQL(query, {"input": {k: v for k, v in wire.items() if v is not None}})
        return Model.model_validate(data["updateModel"])

    @operation
    def delete(self, model: str) -> Returns[str]:
        """Delete a model from the registry and free the weights this server stored. Refused (ConflictError,
        with the reasons) while a use case, an A/B test, a judge or an adapter uses it."""
        data = yield GraphQL(
            "mutation DeleteModel($input: DeleteModelInput!) { deleteModel(input: $input) }",
            {"input": {"model": model}},
        )
        return str(data["deleteModel"])

    @operation
    def update_compute_config(self, model: str, compute_config: dict[str, Any]) -> Returns[Model]:
        """Change a model's compute config (tp, kv_cache_len, max_seq_len)."""
        wire = {
            "tp": compute_config.get("tp"),
            "kvCacheLen": compute_config.get("kv_cache_len", compute_config.get("kvCacheLen")),
            "maxSeqLen": compute_config.get("max_seq_len", compute_config.get("maxSeqLen")),
        }
        query = (
            f"mutation UpdateModelComputeConfig($m: IdOrKey!, $input: ModelComputeConfigInput!) "
            f"{{ updateModelComputeConfig(idOrKey: $m, input: $input) {{ {MODEL_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"m": model, "input": wire})
        return Model.model_validate(data["updateModelComputeConfig"])

    @operation
    def update_gateway_config(
        self,
        model: str,
        connect_timeout_s: float | None = None,
        first_byte_timeout_s: float | None = None,
        total_timeout_s: float | None = None,
        max_retries: int | None = None,
        fallbacks: builtins.list[str] | None = None,
        defaults: dict[str, Any] | None = None,
    ) -> Returns[Model]:
        """Set how the gateway calls a model: upstream timeouts in seconds (connect, first byte — also each
        later wait of a stream — and total), retries after a connection error, 429 or 5xx, the models that
        serve in order when it fails before answering, and request fields sent when the caller gives none.
        None leaves a value as it is; a timeout of 0 goes back to the server's default; ``[]`` / ``{}``
        clear the fallbacks / defaults."""
        wire = {
            "connectTimeoutS": connect_timeout_s,
            "firstByteTimeoutS": first_byte_timeout_s,
            "totalTimeoutS": total_timeout_s,
            "maxRetries": max_retries,
            "fallbacks": fallbacks,
            "defaults": defaults,
        }
        query = (
            f"mutation UpdateModelGatewayConfig($m: IdOrKey!, $input: ModelGatewayConfigInput!) "
            f"{{ updateModelGatewayConfig(idOrKey: $m, input: $input) {{ {MODEL_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"m": model, "input": {k: v for k, v in wire.items() if v is not None}})
        return Model.model_validate(data["updateModelGatewayConfig"])

    @operation
    def terminate(self, model: str, force: bool = False) -> Returns[str]:
        """Take a model offline on every use case; ``force`` is needed when several use cases use it."""
        query = "mutation TerminateModel($m: IdOrKey!, $force: Boolean!) { terminateModel(idOrKey: $m, force: $force) }"
        data = yield GraphQL(query, {"m": model, "force": force})
        return str(data["terminateModel"])

    def _deploy(
        self, model: str, wait: bool, use_case: str | None, placement: dict[str, Any] | None
    ) -> Returns[ModelService]:
        query = (
            f"mutation DeployModel($input: DeployModelInput!) {{ deployModel(input: $input) {{ {SERVICE_FIELDS} }} }}"
        )
        variables = {
            "input": {
                "model": model,
                "useCase": self.use_case_key(use_case),
                "wait": wait,
                "placement": _placement(placement),
            }
        }
        data = yield GraphQL(query, variables)
        return ModelService.model_validate(data["deployModel"])

    def _update(self, model: str, use_case: str | None, **changes: Any) -> Returns[ModelService]:
        query = (
            "mutation UpdateModel($input: UpdateModelService!) { updateModelService(input: $input) {"
            f" {SERVICE_FIELDS} }} }}"
        )
        wire = {
            "isDefault": changes.get("is_default"),
            "desiredOnline": changes.get("desired_online"),
            "placement": changes.get("placement"),
            "name": changes.get("name"),
            "systemPromptTemplate": changes.get("system_prompt_template"),
        }
        variables = {
            "input": {
                "useCase": self.use_case_key(use_case),
                "modelService": model,
                **{k: v for k, v in wire.items() if v is not None},
            }
        }
        data = yield GraphQL(query, variables)
        return ModelService.model_validate(data["updateModelService"])
