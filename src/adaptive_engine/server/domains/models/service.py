"""The model registry: registering models, attaching them to use cases, deploying and terminating.

Loading and unloading weights belongs to the inference manager (``Platform.inference``); this module
records what is wanted and asks it to act. Without a manager (tests that need no inference), local
models stay where the registry put them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
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
from adaptive_engine.server.db.models import AbCampaign, Model, ModelService, UseCase
from adaptive_engine.server.domains.use_cases.service import (
    get_use_case,
    key_from_name,
    validate_key,
)
from adaptive_engine.server.domains.usage.prices import Prices, load_table
from adaptive_engine.server.domains.usage.prices import check as check_prices
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


def made_by_job(model: Model) -> uuid.UUID | None:
    """The job that made the model, as its lineage says (None for a model no job made)."""
    return parse_uuid(str((model.lineage or {}).get("job_id") or ""))


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
    return list((await session.execute(query)).scalars().unique())


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
        model.price_input, model.price_output, model.price_cached_input = prices.input, prices.output, prices.cached_input


async def update_prices(session: AsyncSession, principal: Principal, id_or_key: str, values: dict[str, Any]) -> Model:
    """Set some of a model's prices (the others are kept)."""
    principal.require_global("model:register")
    model = await get_model(session, id_or_key)
    current = {"input": model.price_input, "output": model.price_output, "cached_input": model.price_cached_input}
    set_prices(model, check_prices({**current, **values}, "input"))
    await session.flush()
    return model


async def add_local_model(session: AsyncSession, principal: Principal, *, path: str, name: str, key: str | None,
                          prices: Prices | None = None, price_table: Path | None = None) -> Model:
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
) -> ModelService:
    use_case = await get_use_case(session, principal, use_case_key, "model:deploy")
    service = await _service_for(session, use_case, model_service)
    if is_default is True:
        if service.model.kind != "chat":
            raise InvalidInput(f"model '{service.model.key}' is an embedding model: it cannot be the default chat model")
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


async def update_compute_config(session: AsyncSession, principal: Principal, model_key: str, changes: dict[str, int | None]) -> Model:
    principal.require_global("model:register")
    model = await get_model(session, model_key)
    config = dict(model.compute_config or {})
    for name, value in changes.items():
        if value is None:
            continue
        low, high = _COMPUTE_FIELDS[name]
        if not low <= value <= high:
            raise InvalidInput(f"{name} must be between {low} and {high}")
        config[name] = value
    model.compute_config = config
    await session.flush()
    return model


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

