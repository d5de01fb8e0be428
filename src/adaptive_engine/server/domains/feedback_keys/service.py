"""Feedback keys (the wire protocol calls them metrics): registration, lookup, links to use cases,
and the rule that says which values a key accepts."""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.lookup import find_by_id_or_key
from adaptive_engine.server.db.models import (
    Comparison,
    Feedback,
    Metric,
    UseCase,
    UseCaseMetric,
)
from adaptive_engine.server.db.session import rowcount
from adaptive_engine.server.domains.feedback_keys.records import MetricRecord
from adaptive_engine.server.domains.use_cases.service import UseCaseRecord, get_use_case, validate_key
from adaptive_engine.server.errors import AlreadyExists, InvalidInput, NotFound

KINDS = ("SCALAR", "BOOL")
SCORING_TYPES = ("HIGHER_IS_BETTER", "LOWER_IS_BETTER")


async def register_key(
    session: AsyncSession,
    principal: Principal,
    *,
    key: str | None,
    name: str | None,
    kind: str,
    scoring_type: str = "HIGHER_IS_BETTER",
    description: str | None = None,
) -> MetricRecord:
    principal.require_global("feedback:write")
    if key is None:
        if not name or not name.strip():
            raise InvalidInput("a feedback key needs a key or a name")
        key = "-".join(name.lower().split())
    validate_key(key, "feedback key")
    kind, scoring_type = kind.upper(), scoring_type.upper()
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}, not '{kind}'")
    if scoring_type not in SCORING_TYPES:
        raise InvalidInput(f"scoring type must be one of {', '.join(SCORING_TYPES)}, not '{scoring_type}'")
    if (await session.execute(select(Metric.id).where(Metric.key == key))).first():
        raise AlreadyExists(f"feedback key '{key}' already exists")
    metric = Metric(key=key, name=name or key, kind=kind, scoring_type=scoring_type, description=description or "")
    session.add(metric)
    await session.flush()
    return MetricRecord.of(metric)


async def get_key(session: AsyncSession, id_or_key: str | uuid.UUID, lookups: Any = None) -> Metric:
    """The key by id or key (through the logging path's ``LookupCache`` when given)."""
    metric = await (
        lookups.metric(session, id_or_key) if lookups is not None else find_by_id_or_key(session, Metric, id_or_key)
    )
    if metric is None:
        raise NotFound(f"feedback key '{id_or_key}' not found")
    return metric


async def find_key(session: AsyncSession, id_or_key: str | uuid.UUID) -> MetricRecord:
    """The key by id or key, as readers see it."""
    return MetricRecord.of(await get_key(session, id_or_key))


async def keys_by_id(session: AsyncSession, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, MetricRecord]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = (await session.execute(select(Metric).where(Metric.id.in_(wanted)))).scalars()
    return {m.id: MetricRecord.of(m) for m in rows}


async def keys_by_key(session: AsyncSession, keys: Iterable[str]) -> dict[str, MetricRecord]:
    wanted = set(keys)
    if not wanted:
        return {}
    rows = (await session.execute(select(Metric).where(Metric.key.in_(wanted)))).scalars()
    return {m.key: MetricRecord.of(m) for m in rows}


async def list_keys(session: AsyncSession) -> list[MetricRecord]:
    rows = (await session.execute(select(Metric).order_by(Metric.created_at, Metric.key))).scalars()
    return [MetricRecord.of(m) for m in rows]


async def link(session: AsyncSession, principal: Principal, *, use_case: str, metric: str) -> MetricRecord:
    found_use_case = await get_use_case(session, principal, use_case, "use_case:write")
    found = await get_key(session, metric)
    already = await session.get(UseCaseMetric, (found_use_case.id, found.id))
    if already is None:
        session.add(UseCaseMetric(use_case_id=found_use_case.id, metric_id=found.id))
        await session.flush()
    return MetricRecord.of(found)


async def unlink(session: AsyncSession, principal: Principal, *, use_case: str, metric: str) -> MetricRecord:
    found_use_case = await get_use_case(session, principal, use_case, "use_case:write")
    found = await get_key(session, metric)
    result = await session.execute(
        delete(UseCaseMetric).where(UseCaseMetric.use_case_id == found_use_case.id, UseCaseMetric.metric_id == found.id)
    )
    if not rowcount(result):
        raise NotFound(f"feedback key '{found.key}' is not linked to use case '{found_use_case.key}'")
    return MetricRecord.of(found)


async def use_cases_of_keys(
    session: AsyncSession, metric_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[UseCaseRecord]]:
    """The use cases each key is linked to, by key (no visibility check: the caller filters)."""
    query = (
        select(UseCaseMetric.metric_id, UseCase)
        .join(UseCaseMetric, UseCaseMetric.use_case_id == UseCase.id)
        .where(UseCaseMetric.metric_id.in_(list(metric_ids)))
        .order_by(UseCase.key)
    )
    found: dict[uuid.UUID, list[UseCaseRecord]] = {}
    for metric_id, use_case in (await session.execute(query)).all():
        found.setdefault(metric_id, []).append(UseCaseRecord.of(use_case))
    return found


async def feedback_flags(session: AsyncSession, metric_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, tuple[bool, bool]]:
    """Per key: (has direct feedbacks, has comparison feedbacks), two queries for all the keys."""
    ids = set(metric_ids)
    if not ids:
        return {}
    direct = set(
        (await session.execute(select(Feedback.metric_id).where(Feedback.metric_id.in_(ids)).distinct())).scalars()
    )
    compared = set(
        (await session.execute(select(Comparison.metric_id).where(Comparison.metric_id.in_(ids)).distinct())).scalars()
    )
    return {m: (m in direct, m in compared) for m in ids}


def coerce_value(metric: Metric, value: Any, where: str = "value") -> float:
    """The stored value of ``value`` on ``metric``, or INVALID_INPUT saying why it is refused.

    Bool keys take 0, 1, true and false only; scalar keys take any finite number (not a boolean)."""
    if metric.kind == "BOOL":
        if isinstance(value, bool):
            return 1.0 if value else 0.0
        if isinstance(value, (int, float)) and value in (0, 1):
            return float(value)
        raise InvalidInput(
            f"{where}: feedback key '{metric.key}' is a bool key: it accepts 0, 1, true or false, not {value!r}"
        )
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{where}: feedback key '{metric.key}' is a scalar key: it accepts a number, not {value!r}")
    if not math.isfinite(value):
        raise InvalidInput(f"{where}: feedback values must be finite numbers, not {value!r}")
    return float(value)
