"""GET /api/v1/models and /api/v1/models/{id}: the names a caller may send as ``model``, in OpenAI's shape.

Each entry is ``{"id", "object": "model", "created", "owned_by"}`` plus ours: ``use_case``, ``model`` (the
model key it serves with), ``kind`` (``chat`` or ``embedding``) and ``status``. The list holds, for every use
case where the caller may run inference, ``"{use_case}"`` (when it has a default model),
``"{use_case}/{model}"`` for each deployed model, and each bare model key that resolves for this caller
(names.py); only deployed attachments are listed, while any resolvable name can be retrieved.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal, allows
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.refs import RefCache
from adaptive_engine.server.domains.inference.names import resolve_name
from adaptive_engine.server.domains.inference.schemas import ModelCard
from adaptive_engine.server.errors import NotFound
from adaptive_engine.server.timestamps import epoch

PERMISSION = "inference:run"


def _entry(name: str, use_case: orm.UseCase, model: orm.Model) -> ModelCard:
    return ModelCard(
        id=name,
        created=epoch(model.created_at) or 0,
        owned_by=model.provider,
        use_case=use_case.key,
        model=model.key,
        kind=model.kind,
        status=model.status,
    )


async def list_models(session: AsyncSession, principal: Principal) -> list[ModelCard]:
    use_cases = (
        (
            await session.execute(
                select(orm.UseCase).where(principal.sees_use_case(orm.UseCase.id)).order_by(orm.UseCase.key)
            )
        )
        .scalars()
        .all()
    )
    granted = await principal.use_case_permissions_many(session, [uc.id for uc in use_cases])
    usable = {uc.id: uc for uc in use_cases if allows(granted[uc.id], PERMISSION)}
    seen_keys = {uc.key for uc in use_cases}
    services = (
        (
            await session.execute(
                select(orm.ModelService)
                .where(orm.ModelService.use_case_id.in_(list(usable)))
                .order_by(orm.ModelService.created_at)
            )
        )
        .scalars()
        .all()
        if usable
        else []
    )
    by_use_case: dict[Any, list[orm.ModelService]] = defaultdict(list)
    by_model: dict[Any, list[orm.ModelService]] = defaultdict(list)
    for service in services:
        by_use_case[service.use_case_id].append(service)
        by_model[service.model_id].append(service)
    out: list[ModelCard] = []
    for use_case in usable.values():
        attached = by_use_case[use_case.id]
        default = next((s for s in attached if s.is_default and s.desired_online), None)
        if default is not None:
            out.append(_entry(use_case.key, use_case, default.model))
        out.extend(_entry(f"{use_case.key}/{s.model.key}", use_case, s.model) for s in attached if s.desired_online)
    for attached in by_model.values():
        model = attached[0].model
        if model.key in seen_keys:
            continue  # the name is that use case's (rule 1 of names.py)
        chosen = attached if len(attached) == 1 else [s for s in attached if s.is_default]
        if len(chosen) == 1 and chosen[0].desired_online:
            out.append(_entry(model.key, usable[chosen[0].use_case_id], model))
    return out


async def get_model(session: AsyncSession, principal: Principal, refs: RefCache, name: str) -> ModelCard:
    named = await resolve_name(session, principal, refs, name, permission=PERMISSION)
    use_case = await session.get(orm.UseCase, named.use_case.id)
    model_id = named.model.id if named.model is not None else None
    attached = {a.model.id for a in await refs.attachments(session, named.use_case.id)}
    if named.model is not None and named.model.id not in attached:
        raise NotFound(f"model '{named.model.key}' is not attached to use case '{named.use_case.key}'")
    if model_id is None:
        default = await refs.default_model(session, named.use_case.id)
        if default is None:
            raise NotFound(f"use case '{named.use_case.key}' has no default model")
        model_id = default.id
    model = await session.get(orm.Model, model_id)
    if use_case is None or model is None:
        raise NotFound(f"model '{name}' not found")
    return _entry(name, use_case, model)
