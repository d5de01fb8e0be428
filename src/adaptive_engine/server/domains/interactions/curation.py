"""Curation of logged traffic: labels and metadata of a completion, and the context of a completion (its
session's turns, the earlier turns, how many answers share its prompt). Feedback corrections: feedback/corrections.py.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.domains.interactions import repository
from adaptive_engine.server.domains.interactions.service import resolve_ab_campaign
from adaptive_engine.server.domains.use_cases.service import get_use_case
from adaptive_engine.server.errors import InvalidInput, NotFound

MAX_LABEL_CHARS = 200
# The turns of a session listed with a completion (its session, its history).
MAX_TURNS = 200


async def _completion(
    session: AsyncSession, principal: Principal, completion_id: uuid.UUID, permission: str, *, for_update: bool = False
) -> orm.Completion:
    query = select(orm.Completion).where(orm.Completion.id == completion_id)
    if for_update:
        query = query.with_for_update()  # label changes are atomic: concurrent ones take turns
    found = (await session.execute(query)).scalar_one_or_none()
    what = f"completion '{completion_id}'"
    if found is None:
        raise NotFound(f"{what} not found")
    await principal.require(session, permission, found.use_case_id, what)
    return found


def _label_pairs(values: list[Any] | None, where: str) -> list[tuple[str, str]]:
    pairs = []
    for i, item in enumerate(values or []):
        key, value = str(item.key), str(item.value)
        if not key.strip():
            raise InvalidInput(f"{where}[{i}].key must not be empty")
        if len(key) > MAX_LABEL_CHARS or len(value) > MAX_LABEL_CHARS:
            raise InvalidInput(f"{where}[{i}]: keys and values are at most {MAX_LABEL_CHARS} characters")
        pairs.append((key, value))
    return pairs


async def update_completion(session: AsyncSession, principal: Principal, inp: Any) -> orm.Completion:
    """Labels set whole, or added (a key's value replaced) and removed (key and value must match); metadata set."""
    if inp.set_labels is not None and (inp.add_labels or inp.remove_labels):
        raise InvalidInput("setLabels replaces every label: give it alone, or use addLabels / removeLabels")
    if inp.metadata is not None and not isinstance(inp.metadata, dict):
        raise InvalidInput("metadata must be a JSON object")
    to_set = _label_pairs(inp.set_labels, "setLabels") if inp.set_labels is not None else None
    to_add = _label_pairs(inp.add_labels, "addLabels")
    to_remove = _label_pairs(inp.remove_labels, "removeLabels")
    if set(to_add) & set(to_remove):
        raise InvalidInput("a label cannot be added and removed in one update")
    completion = await _completion(session, principal, inp.id, "feedback:write", for_update=True)
    labels = dict(completion.labels or {})
    if to_set is not None:
        keys = [k for k, _ in to_set]
        if len(keys) != len(set(keys)):
            raise InvalidInput("setLabels names a key twice: a completion has one value per label key")
        labels = dict(to_set)
    for key, value in to_remove:
        if labels.get(key) != value:
            raise InvalidInput(f"removeLabels: the completion has no label {key}={value}")
        del labels[key]
    labels.update(to_add)
    completion.labels = labels
    if inp.metadata is not None:
        completion.user_metadata = dict(inp.metadata)
    await session.flush()
    return completion


async def session_turns(
    session: AsyncSession, completion: orm.Completion, *, before_only: bool
) -> list[orm.Completion]:
    """The completions of ``completion``'s session, oldest first (those before it when ``before_only``)."""
    if completion.session_id is None:
        return [] if before_only else [completion]
    query = select(orm.Completion).where(
        orm.Completion.use_case_id == completion.use_case_id, orm.Completion.session_id == completion.session_id
    )
    if before_only:
        query = query.where(
            (orm.Completion.created_at < completion.created_at)
            | ((orm.Completion.created_at == completion.created_at) & (orm.Completion.id < completion.id))
        )
        # The latest earlier turns, when there are many.
        query = query.order_by(orm.Completion.created_at.desc(), orm.Completion.id.desc()).limit(MAX_TURNS)
        return list(reversed((await session.execute(query)).scalars().all()))
    query = query.order_by(orm.Completion.created_at, orm.Completion.id).limit(MAX_TURNS)
    return list((await session.execute(query)).scalars())


async def siblings_count(session: AsyncSession, principal: Principal, completion: orm.Completion, flt: Any) -> int:
    """Other completions of the same prompt that ``flt`` selects (in the completion's use case)."""
    named = await get_use_case(session, principal, flt.use_case, "use_case:read")
    if named.id != completion.use_case_id:
        raise InvalidInput("siblingsCount: filter.useCase must be the completion's use case")
    campaign = getattr(flt, "ab_campaign", None)
    campaign_id = await resolve_ab_campaign(session, campaign, "abCampaign", named.id) if campaign else None
    conditions = await repository.completion_filter(session, named.id, flt, campaign_id)
    query = (
        select(func.count())
        .select_from(orm.Completion)
        .where(*conditions, orm.Completion.prompt_hash == completion.prompt_hash, orm.Completion.id != completion.id)
    )
    return int((await session.execute(query)).scalar_one())
