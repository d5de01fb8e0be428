"""The model registry: registering models, attaching them to use cases, deploying and terminating.

Loading and unloading weights belongs to the inference manager (``Platform.inference``); this module
records what is wanted and asks it to act. Without a manager (tests that need no inference), local
models stay where the registry put them.
"""

from __future__ import annotations

import asyncio
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.lookup import (
    find_by_id_or_key,
    get_by_id_or_key,
    parse_uuid,
)
from adaptive_engine.server.db.models import AbCampaign, AbCampaignArm, ComputePool, Judge, Model, ModelService, UseCase
from adaptive_engine.server.domains.models import prompt_templates
from adaptive_engine.server.domains.models.records import ModelRecord, ModelServiceRecord
from adaptive_engine.server.domains.usage.prices import Prices, load_table
from adaptive_engine.server.domains.usage.prices import check as check_prices
from adaptive_engine.server.domains.use_cases.service import (
    UseCaseRecord,
    check_name,
    get_use_case,
    key_from_name,
    validate_key,
)
from adaptive_engine.server.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
    UpstreamError,
)
from adaptive_engine.server.notify.sender import announce_model_deployed
from adaptive_engine.server.outbound import OutboundGuard

EXTERNAL_PROVIDERS = ("open_ai", "google", "azure", "anthropic")
DEFAULT_ENDPOINTS = {
    "open_ai": "https://api.openai.com/v1",
    "google": "https://generativelanguage.googleapis.com/v1beta/openai",
    "anthropic": "https://api.anthropic.com/v1",
}
# How long a deploy with wait=True blocks before answering with the model still loading.
DEPLOY_WAIT_SECONDS = 600.0


class InferenceManager(Protocol):
    """What the registry needs from the inference layer."""

    async def request_load(self, model_id: uuid.UUID) -> None:
        """Start loading (non-blocking); the manager moves the model to ONLINE or ERROR."""

    async def unload(self, model_id: uuid.UUID) -> None:
        """Free the model's memory."""


@dataclass
class ModelFilters:
    online: list[str] | None = None
    kinds: list[str] | None = None
    available: bool | None = None
    trainable: bool | None = None
    # Weights kept by this server (local models) rather than served by a provider.
    in_storage: bool | None = None
    published: bool | None = None
    # Bounds on the size in bytes: {"gt": 10, "lte": 100, ...}; a model of unknown size matches none.
    size: dict[str, int] | None = None


_SIZE_CONDITIONS = {
    "eq": lambda c, v: c == v,
    "neq": lambda c, v: c != v,
    "gt": lambda c, v: c > v,
    "gte": lambda c, v: c >= v,
    "lt": lambda c, v: c < v,
    "lte": lambda c, v: c <= v,
}


async def models_by_id(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, ModelRecord]:
    rows = (await session.execute(select(Model).where(Model.id.in_(ids)))).unique().scalars()
    return {m.id: ModelRecord.of(m) for m in rows}


async def models_by_key(session: AsyncSession, keys: Sequence[str]) -> dict[str, ModelRecord]:
    rows = (await session.execute(select(Model).where(Model.key.in_(keys)))).unique().scalars()
    return {m.key: ModelRecord.of(m) for m in rows}


async def use_cases_of_models(
    session: AsyncSession, model_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[UseCaseRecord]]:
    """The use cases each model is attached to, by key (no visibility check: the caller filters)."""
    query = (
        select(ModelService.model_id, UseCase)
        .join(ModelService, ModelService.use_case_id == UseCase.id)
        .where(ModelService.model_id.in_(model_ids))
        .order_by(UseCase.key)
    )
    out: dict[uuid.UUID, list[UseCaseRecord]] = {}
    for model_id, use_case in (await session.execute(query)).all():
        out.setdefault(model_id, []).append(UseCaseRecord.of(use_case))
    return out


async def services_of_use_cases(
    session: AsyncSession, use_case_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ModelServiceRecord]]:
    """The model services of each use case, oldest first."""
    query = select(ModelService).where(ModelService.use_case_id.in_(use_case_ids)).order_by(ModelService.created_at)
    out: dict[uuid.UUID, list[ModelServiceRecord]] = {}
    for found in (await session.execute(query)).unique().scalars():
        out.setdefault(found.use_case_id, []).append(ModelServiceRecord.of(found))
    return out


async def get_model(session: AsyncSession, id_or_key: str) -> Model:
    return await get_by_id_or_key(session, Model, id_or_key, "model")


async def list_models(session: AsyncSession, filters: ModelFilters | None = None) -> list[Model]:
    query = select(Model).order_by(Model.created_at, Model.key)
    if filters:
        if filters.online:
            query = query.where(Model.status.in_(filters.online))
        if filters.kinds:
            query = query.where(Model.kind.in_(filters.kinds))
        if filters.available is not None:
            ready = Model.status.in_(["ONLINE", "OFFLINE", "PENDING"])
            query = query.where(ready if filters.available else ~ready)
        if filters.trainable is not None:
            local = Model.provider == "local"
            query = query.where(local if filters.trainable else ~local)
        if filters.in_storage is not None:
            query = query.where(Model.is_external.is_(not filters.in_storage))
        if filters.published is not None:
            query = query.where(Model.is_published.is_(filters.published))
        for op, value in (filters.size or {}).items():
            query = query.where(Model.size.is_not(None), _SIZE_CONDITIONS[op](Model.size, value))
    return list((await session.execute(query)).scalars().unique())


async def visible_to(session: AsyncSession, principal: Principal, models: list[Model]) -> list[Model]:
    """The published models, and those attached to a use case the caller sees."""
    attached = set(
        (
            await session.execute(
                select(ModelService.model_id).where(principal.sees_use_case(ModelService.use_case_id))
            )
        ).scalars()
    )
    return [m for m in models if m.is_published or m.id in attached]


async def new_model_key(session: AsyncSession, key: str | None, name: str) -> str:
    key = validate_key(key or key_from_name(name), "model key")
    if (await session.execute(select(Model.id).where(Model.key == key))).first():
        raise AlreadyExists(f"model '{key}' already exists")
    return key


def _check_endpoint(endpoint: str, guard: OutboundGuard) -> str:
    """Checked by the outbound guard now; names are checked again each time they are resolved."""
    return guard.check_url(endpoint, "endpoint").rstrip("/")


async def add_external_model(
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    provider: str,
    external_model_id: str,
    api_key: str,
    endpoint: str | None = None,
    api_version: str | None = None,
    key: str | None = None,
    kind: str = "chat",
    guard: OutboundGuard,
    prices: Prices | None = None,
    price_table: Path | None = None,
) -> Model:
    principal.require_global("model:register")
    if provider not in EXTERNAL_PROVIDERS:
        raise InvalidInput(f"provider must be one of {', '.join(EXTERNAL_PROVIDERS)}")
    if not name.strip():
        raise InvalidInput("model name must not be empty")
    if not external_model_id.strip():
        raise InvalidInput("external_model_id must not be empty")
    if not api_key:
        raise InvalidInput("api_key must not be empty")
    if provider == "azure" and not endpoint:
        raise InvalidInput("an Azure model needs its endpoint (the resource URL, e.g. https://NAME.openai.azure.com)")
    source: dict[str, Any] = {
        "external_model_id": external_model_id,
        "endpoint": _check_endpoint(endpoint, guard) if endpoint else DEFAULT_ENDPOINTS.get(provider),
    }
    if provider == "azure":
        source["api_version"] = api_version or "2024-10-21"
    model = Model(
        key=await new_model_key(session, key, name),
        name=name,
        kind=kind,
        provider=provider,
        is_external=True,
        source=source,
        secret=api_key,
        # Nothing to load: an external model serves as soon as it is registered.
        status="ONLINE",
    )
    set_prices(model, prices or table_prices(price_table, model.key, external_model_id))
    session.add(model)
    await session.flush()
    return model


def table_prices(price_table: Path | None, *names: str) -> Prices | None:
    """The price table's row for the first of ``names`` it lists (the setting ``price_table``)."""
    if price_table is None:
        return None
    table = load_table(price_table)
    return next((table[name] for name in names if name in table), None)


def set_prices(model: Model, prices: Prices | None) -> None:
    if prices is not None:
        model.price_input, model.price_output, model.price_cached_input = (
            prices.input,
            prices.output,
            prices.cached_input,
        )


async def update_prices(session: AsyncSession, principal: Principal, id_or_key: str, values: dict[str, Any]) -> Model:
    """Set some of a model's prices (the others are kept)."""
    principal.require_global("model:register")
    model = await get_model(session, id_or_key)
    current = {"input": model.price_input, "output": model.price_output, "cached_input": model.price_cached_input}
    set_prices(model, check_prices({**current, **values}, "input"))
    await session.flush()
    return model


async def add_local_model(
    session: AsyncSession,
    principal: Principal,
    *,
    path: str,
    name: str,
    key: str | None,
    prices: Prices | None = None,
    price_table: Path | None = None,
) -> Model:
    """Register a model folder on the server (Hugging Face layout, or a PEFT adapter with its base); it costs
    nothing unless priced (here, or by the price table)."""
    principal.require_global("model:register")
    model = await register_folder(session, path=path, name=name, key=key)
    set_prices(model, prices or table_prices(price_table, model.key))
    await session.flush()
    return model


async def register_folder(session: AsyncSession, *, path: str, name: str, key: str | None) -> Model:
    """The registration itself, for callers that checked the caller's right (a job's own routes do so
    with Principal.require_registry_for_job)."""
    folder = Path(path)
    if not folder.is_dir():
        raise InvalidInput(f"model folder '{path}' does not exist on the server")
    if not ((folder / "config.json").is_file() or (folder / "adapter_config.json").is_file()):
        raise InvalidInput(f"'{path}' holds no config.json nor adapter_config.json: not a model folder")
    model = Model(
        key=await new_model_key(session, key, name),
        name=name,
        kind="chat",
        provider="local",
        is_adapter=(folder / "adapter_config.json").is_file(),
        source={"path": str(folder.resolve())},
        status="OFFLINE",
        size=sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()),
    )
    session.add(model)
    await session.flush()
    return model


async def _service(session: AsyncSession, use_case: UseCase, model: Model) -> ModelService | None:
    return (
        await session.execute(
            select(ModelService).where(ModelService.use_case_id == use_case.id, ModelService.model_id == model.id)
        )
    ).scalar_one_or_none()


async def attach(session: AsyncSession, principal: Principal, use_case_key: str, model_key: str) -> ModelService:
    """Attach a model to a use case (idempotent). The first model attached becomes the default."""
    use_case = await get_use_case(session, principal, use_case_key, "model:deploy")
    model = await get_model(session, model_key)
    existing = await _service(session, use_case, model)
    if existing is not None:
        return existing
    has_default = (
        await session.execute(
            select(ModelService.id).where(ModelService.use_case_id == use_case.id, ModelService.is_default.is_(True))
        )
    ).first()
    service = ModelService(
        use_case_id=use_case.id,
        model_id=model.id,
        model=model,
        is_default=has_default is None and model.kind == "chat",
        desired_online=False,
    )
    session.add(service)
    await session.flush()
    return service


async def deploy(
    session: AsyncSession,
    principal: Principal,
    inference: InferenceManager | None,
    *,
    use_case_key: str,
    model_key: str,
    placement: dict[str, Any] | None = None,
) -> ModelService:
    """Attach if needed and ask for the model to be online for this use case."""
    service = await attach(session, principal, use_case_key, model_key)
    placement = await check_placement(session, placement)
    newly_deployed = not service.desired_online
    service.desired_online = True
    if placement is not None:
        service.placement = placement
    model = service.model
    if model.status in ("OFFLINE", "ERROR") and not model.is_external:
        model.status = "PENDING"
        model.error = None
    if newly_deployed and model.status == "ONLINE":
        await announce_model_deployed(session, model, service.use_case_id)
    await session.flush()
    return service


async def check_placement(session: AsyncSession, placement: dict[str, Any] | None) -> dict[str, Any] | None:
    """A placement this server can honour: models are served in the server's own process, so the pools named
    must be local ones (the server's machine); a Ray pool cannot host them and a TTFT target is not scheduled."""
    if placement is None:
        return None
    pools = placement.get("compute_pools") or []
    if not pools:
        raise InvalidInput("placement.computePools: name at least one compute pool")
    if placement.get("max_ttft_ms") is not None:
        raise InvalidInput("placement.maxTtftMs: time-to-first-token targets are not scheduled on this platform")
    keys = []
    for name in pools:
        pool = await find_by_id_or_key(session, ComputePool, name)
        if pool is None:
            raise InvalidInput(f"placement.computePools: compute pool '{name}' not found")
        if pool.executor != "local":
            raise InvalidInput(
                f"placement.computePools: pool '{pool.key}' runs jobs on {pool.executor}; models are "
                "served on this server's own machine (a local pool)"
            )
        keys.append(pool.key)
    return {"compute_pools": sorted(set(keys))}


async def request_load(inference: InferenceManager | None, model: Model) -> None:
    """Called after the deploy is committed, so the manager sees the PENDING row."""
    if inference is not None and model.status == "PENDING":
        await inference.request_load(model.id)


async def release(inference: InferenceManager, model: Model) -> None:
    """Free a terminated model's weights; called once the termination is committed."""
    if not model.is_external:
        await inference.unload(model.id)


async def wait_until_online(sessionmaker: Any, model_id: uuid.UUID, timeout: float = DEPLOY_WAIT_SECONDS) -> Model:
    """Poll until the model is ONLINE; raise with the backend's reason on ERROR."""
    deadline = time.monotonic() + timeout
    while True:
        async with sessionmaker() as session:
            model = await session.get(Model, model_id)
            if model is None:
                raise NotFound("model was removed while deploying")
            if model.status == "ONLINE":
                return model
            if model.status == "ERROR":
                raise UpstreamError(f"model '{model.key}' failed to load: {model.error or 'unknown error'}")
        if time.monotonic() > deadline:
            return model
        await asyncio.sleep(0.2)


async def _service_for(session: AsyncSession, use_case: UseCase, model_or_service: str) -> ModelService:
    as_uuid = parse_uuid(model_or_service)
    if as_uuid is not None:
        by_id = await session.get(ModelService, as_uuid)
        if by_id is not None and by_id.use_case_id == use_case.id:
            return by_id
    model = await find_by_id_or_key(session, Model, model_or_service)
    service = await _service(session, use_case, model) if model else None
    if service is None:
        raise NotFound(f"model '{model_or_service}' is not attached to use case '{use_case.key}'")
    return service


async def update_service(
    session: AsyncSession,
    principal: Principal,
    *,
    use_case_key: str,
    model_service: str,
    is_default: bool | None = None,
    desired_online: bool | None = None,
    placement: dict[str, Any] | None = None,
    name: str | None = None,
    system_prompt_template: Any = None,
    clear_system_prompt_template: bool = False,
) -> ModelService:
    """Change what is given (None: unchanged); ``clear_system_prompt_template`` removes the template."""
    use_case = await get_use_case(session, principal, use_case_key, "model:deploy")
    service = await _service_for(session, use_case, model_service)
    if name is not None:
        check_name(name)
    placement = await check_placement(session, placement)
    template = (
        await prompt_templates.get(session, system_prompt_template) if system_prompt_template is not None else None
    )
    if template is not None and service.model.kind != "chat":
        raise InvalidInput(
            f"systemPromptTemplate: model '{service.model.key}' is an embedding model (no chat requests)"
        )
    if name is not None:
        service.name = name
    if template is not None:
        service.system_prompt_template = template
    elif clear_system_prompt_template:
        service.system_prompt_template = None
    if is_default is True:
        if service.model.kind != "chat":
            raise InvalidInput(
                f"model '{service.model.key}' is an embedding model: it cannot be the default chat model"
            )
        await set_default(session, use_case.id, service)
    elif is_default is False:
        service.is_default = False
    if desired_online is not None:
        newly_deployed = desired_online and not service.desired_online
        service.desired_online = desired_online
        if desired_online and service.model.status in ("OFFLINE", "ERROR") and not service.model.is_external:
            service.model.status = "PENDING"
            service.model.error = None
        if newly_deployed and service.model.status == "ONLINE":
            await announce_model_deployed(session, service.model, service.use_case_id)
    if placement is not None:
        service.placement = placement
    await session.flush()
    return service


async def set_default(session: AsyncSession, use_case_id: uuid.UUID, service: ModelService) -> None:
    """Make ``service`` the use case's only default (A/B promotion uses this too)."""
    others = await session.execute(
        select(ModelService).where(ModelService.use_case_id == use_case_id, ModelService.is_default.is_(True))
    )
    for other in others.scalars():
        other.is_default = False
    service.is_default = True
    await session.flush()


async def detach(session: AsyncSession, principal: Principal, use_case_key: str, model_key: str) -> bool:
    use_case = await get_use_case(session, principal, use_case_key, "model:deploy")
    service = await _service_for(session, use_case, model_key)
    await _ensure_not_in_active_campaign(session, use_case.id, service.model_id)
    await session.delete(service)
    await session.flush()
    return True


async def _ensure_not_in_active_campaign(session: AsyncSession, use_case_id: uuid.UUID, model_id: uuid.UUID) -> None:
    """Refuse to take a model away from a use case while an active A/B test routes traffic to it. The A/B tests
    domain sits above this one (it promotes winners through ``set_default``), so the campaign table is read here."""
    query = select(AbCampaign).where(AbCampaign.active_use_case_id == use_case_id)
    campaign = (await session.execute(query)).scalar_one_or_none()
    if campaign is not None and any(arm.model_id == model_id for arm in campaign.arms):
        raise Conflict(
            f"the model is part of the active A/B test '{campaign.key}': cancel the test or wait for it to finish"
        )


_COMPUTE_FIELDS = {"tp": (1, 64), "kv_cache_len": (0, 10_000_000), "max_seq_len": (1, 10_000_000)}


async def update_compute_config(
    session: AsyncSession,
    principal: Principal,
    model_key: str,
    changes: dict[str, int | None],
    *,
    tensor_parallel: bool = False,
) -> Model:
    """``tensor_parallel``: whether local models are served by vLLM here, the one backend that splits a model
    over several GPUs (``tp``); the in-process backend runs a model whole, so a tp above 1 is refused."""
    principal.require_global("model:register")
    model = await get_model(session, model_key)
    config = dict(model.compute_config or {})
    for name, value in changes.items():
        if value is None:
            continue
        low, high = _COMPUTE_FIELDS[name]
        if not low <= value <= high:
            raise InvalidInput(f"{name} must be between {low} and {high}")
        if name == "tp" and value > 1 and not tensor_parallel:
            raise InvalidInput(
                "tp above 1 needs the vLLM backend (ADAPTIVE_INFERENCE_BACKEND=vllm): this server's "
                "local backend runs a model whole in one process",
                details={"param": "tp"},
            )
        config[name] = value
    model.compute_config = config
    await session.flush()
    return model


async def update_model(
    session: AsyncSession,
    principal: Principal,
    model_key: str,
    *,
    name: str | None = None,
    published: bool | None = None,
    stable: bool | None = None,
) -> Model:
    """Rename a model or set its catalogue flags (None: unchanged)."""
    principal.require_global("model:register")
    model = await get_model(session, model_key)
    if name is not None:
        model.name = check_name(name)
    if published is not None:
        model.is_published = published
    if stable is not None:
        model.is_stable = stable
    await session.flush()
    return model


async def deletion_blockers(session: AsyncSession, model: Model) -> list[str]:
    """Why ``model`` cannot be deleted now (empty: it can)."""
    dependents = [
        (
            select(UseCase.key)
            .join(ModelService, ModelService.use_case_id == UseCase.id)
            .where(ModelService.model_id == model.id),
            "it is attached to use case(s) {} (remove it from them first)",
        ),
        # Finished A/B tests count too: their history (arms, winner) names the model.
        (
            select(AbCampaign.key)
            .join(AbCampaignArm, AbCampaignArm.campaign_id == AbCampaign.id)
            .where(AbCampaignArm.model_id == model.id),
            "it is an arm of the A/B test(s) {}",
        ),
        (select(Judge.key).where(Judge.model_id == model.id), "the judge(s) {} use it"),
        (select(Model.key).where(Model.backbone_id == model.id), "it is the base of {} (delete those first)"),
    ]
    reasons = []
    for query, reason in dependents:
        keys = sorted(set((await session.execute(query)).scalars()))
        if keys:
            reasons.append(reason.format(", ".join(keys)))
    return reasons


async def delete_model(
    session: AsyncSession, principal: Principal, model_key: str, owned_roots: Sequence[Path]
) -> tuple[Model, Path | None]:
    """Delete a model no use case, A/B test, judge or other model depends on. Returns the row and the folder
    of weights to remove once the deletion is committed: only one this server wrote (under one of
    ``owned_roots``: the file store, the jobs' folders); a folder registered with addModel is the user's."""
    principal.require_global("model:register")
    model = await get_model(session, model_key)
    reasons = await deletion_blockers(session, model)
    if reasons:
        raise Conflict(f"model '{model.key}' cannot be deleted: " + "; ".join(reasons))
    folder = None
    path = (model.source or {}).get("path")
    if path and not model.is_external:
        resolved = Path(path).resolve()
        if any(root.resolve() in resolved.parents for root in owned_roots):
            folder = resolved
    await session.delete(model)
    await session.flush()
    return model, folder


def remove_weights(folder: Path | None) -> None:
    if folder is not None and folder.exists():
        shutil.rmtree(folder)


async def terminate(session: AsyncSession, principal: Principal, model_key: str, force: bool) -> Model:
    """Take the model offline everywhere. Refused without ``force`` when several use cases use it."""
    model = await get_model(session, model_key)
    services = list((await session.execute(select(ModelService).where(ModelService.model_id == model.id))).scalars())
    for service in services:
        await principal.require(session, "model:deploy", service.use_case_id, f"model '{model.key}'")
    if not services:
        principal.require_global("model:register")
    use_cases = (
        await session.execute(
            select(func.count(func.distinct(ModelService.use_case_id))).where(ModelService.model_id == model.id)
        )
    ).scalar_one()
    if use_cases > 1 and not force:
        raise Conflict(f"model '{model.key}' is attached to {use_cases} use cases: pass force=True to terminate it")
    for service in services:
        service.desired_online = False
    if not model.is_external:
        model.status = "OFFLINE"
    await session.flush()
    return model
