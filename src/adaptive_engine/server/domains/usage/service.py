"""Usage reads (from the roll-ups only, never the interactions) and the management of limits.

Ranges are read from the finest roll-up that keeps the row count small: MINUTE rows for a range of up to
6 hours, HOUR rows up to 62 days (or whenever hourly buckets are asked for), DAY rows beyond. A bucket of
those rows that overlaps the range counts whole (so a range is rounded out to that granularity).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.lookup import get_by_id_or_key, parse_uuid
from adaptive_engine.server.db.models import ApiKey, Model, ModelService, UsageLimit, UsageRollup, UseCase, User
from adaptive_engine.server.db.models.usage import LATENCY_COLUMNS, NOBODY
from adaptive_engine.server.db.timebuckets import calendar_start, seconds_bucket
from adaptive_engine.server.domains.usage import limits as limits_module
from adaptive_engine.server.domains.usage.limits import LIMIT_FIELDS, SCOPES
from adaptive_engine.server.domains.usage.rollups import MINUTE_RETENTION, PERIODS, percentile
from adaptive_engine.server.errors import InvalidInput, NotFound, PermissionDenied
from adaptive_engine.server.timestamps import epoch, utcnow

UNITS = ("MINUTE", "HOUR", "DAY", "WEEK", "MONTH", "QUARTER", "YEAR", "NO_GROUP_BY_DATE")
DIMENSIONS = {
    "MODEL": UsageRollup.model_key,
    "USE_CASE": UsageRollup.use_case_id,
    "API_KEY": UsageRollup.api_key_id,
    "USER": UsageRollup.user_id,
}
SUMMED = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "errors",
    "cost",
    "latency_count",
    "latency_sum_ms",
    *LATENCY_COLUMNS,
)


@dataclass
class UsageQuery:
    since: datetime | None = None
    until: datetime | None = None
    unit: str = "NO_GROUP_BY_DATE"
    group_by: tuple[str, ...] = ()
    model_keys: list[str] | None = None
    use_case_ids: list[uuid.UUID] | None = None
    api_key_ids: list[uuid.UUID] | None = None
    user_ids: list[uuid.UUID] | None = None


@dataclass
class UsageRow:
    """Sums of one group (and bucket): the wire's UsageReportRow and the official aggregates read these."""

    bucket: int | None
    model_key: str | None = None
    use_case_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    sums: dict[str, float] = field(default_factory=dict)

    def value(self, name: str) -> float:
        return self.sums.get(name, 0)

    @property
    def latency_counts(self) -> list[int]:
        return [int(self.value(c)) for c in LATENCY_COLUMNS]

    def quantile(self, q: float) -> float | None:
        return percentile(self.latency_counts, q)

    @property
    def latency_mean_ms(self) -> float | None:
        count = self.value("latency_count")
        return self.value("latency_sum_ms") / count if count else None


def source_period(query: UsageQuery) -> str:
    minutes_kept = query.since is not None and query.since >= utcnow() - MINUTE_RETENTION
    if query.unit == "MINUTE":
        if not minutes_kept:
            raise InvalidInput(
                f"minute buckets are kept {MINUTE_RETENTION.total_seconds() / 3600:g} hours: give a "
                "timerange within them, or a longer unit"
            )
        return "MINUTE"
    short = query.since is not None and (query.until or utcnow()) - query.since <= timedelta(hours=6)
    if query.unit == "HOUR":
        return "MINUTE" if short and minutes_kept else "HOUR"
    if query.since is not None:
        span = (query.until or utcnow()) - query.since
        if short and minutes_kept:
            return "MINUTE"
        if span <= timedelta(days=62):
            return "HOUR"
    return "DAY"


def check(query: UsageQuery) -> None:
    if query.unit not in UNITS:
        raise InvalidInput(f"unit must be one of {', '.join(UNITS)} (got '{query.unit}')")
    unknown = [d for d in query.group_by if d not in DIMENSIONS]
    if unknown:
        raise InvalidInput(f"groupBy: unknown dimension(s) {unknown}; use {', '.join(DIMENSIONS)}")
    if query.since is not None and query.until is not None and query.since > query.until:
        raise InvalidInput("timerange: from is after to")


async def report(
    session: AsyncSession, principal: Principal, query: UsageQuery, *, mine: bool = False
) -> list[UsageRow]:
    """Sums per bucket of ``query.unit`` and per group, ordered by bucket then group."""
    check(query)
    period = source_period(query)
    size = PERIODS[period]
    conditions: list[Any] = [UsageRollup.period == period, principal.sees_use_case(UsageRollup.use_case_id)]
    if mine:
        conditions = [UsageRollup.period == period, UsageRollup.user_id == principal.user_id]
    if query.since is not None:
        conditions.append(UsageRollup.bucket > (epoch(query.since) or 0) - size)
    if query.until is not None:
        conditions.append(UsageRollup.bucket <= (epoch(query.until) or 0))
    for column, wanted in (
        (UsageRollup.model_key, query.model_keys),
        (UsageRollup.use_case_id, query.use_case_ids),
        (UsageRollup.api_key_id, query.api_key_ids),
        (UsageRollup.user_id, query.user_ids),
    ):
        if wanted is not None:
            conditions.append(column.in_(wanted))
    keys: list[Any] = [DIMENSIONS[d].label(d) for d in query.group_by]
    calendar = query.unit in ("MONTH", "QUARTER", "YEAR")
    if query.unit != "NO_GROUP_BY_DATE":
        # Calendar units are folded from days here (timebuckets.calendar_start).
        unit = "DAY" if calendar else query.unit
        keys.append(
            (UsageRollup.bucket if unit == period else seconds_bucket(UsageRollup.bucket, unit)).label("bucket")
        )
    sums = [func.sum(getattr(UsageRollup, name)).label(name) for name in SUMMED]
    statement = select(*keys, *sums).where(*conditions)
    if keys:
        statement = statement.group_by(*keys)
    out: dict[tuple[Any, ...], UsageRow] = {}
    for record in (await session.execute(statement)).mappings():
        bucket = record.get("bucket")
        if bucket is not None and calendar:
            bucket = calendar_start(int(bucket), query.unit)
        dims = {name: record[name] for name in query.group_by}
        key = (bucket, *(str(dims[d]) for d in query.group_by))
        row = out.get(key)
        if row is None:
            row = out[key] = UsageRow(
                bucket=int(bucket) if bucket is not None else None,
                model_key=dims.get("MODEL"),
                use_case_id=dims.get("USE_CASE"),
                api_key_id=_someone(dims.get("API_KEY")),
                user_id=_someone(dims.get("USER")),
            )
        for name in SUMMED:
            row.sums[name] = row.sums.get(name, 0) + float(record[name] or 0)  # PostgreSQL sums BIGINTs as numeric
    if not out and not query.group_by and query.unit == "NO_GROUP_BY_DATE":
        return [UsageRow(bucket=None)]
    return [out[k] for k in sorted(out, key=lambda k: (k[0] or 0, *k[1:]))]


def _someone(value: Any) -> uuid.UUID | None:
    return None if value is None or value == NOBODY else value


async def model_of(session: AsyncSession, id_or_key: str) -> Model:
    return await get_by_id_or_key(session, Model, id_or_key, "model")


async def models_by_key(session: AsyncSession, keys: list[str]) -> dict[str, Model]:
    if not keys:
        return {}
    rows = (await session.execute(select(Model).where(Model.key.in_(keys)))).scalars()
    return {m.key: m for m in rows}


async def use_cases_by_id(session: AsyncSession, ids: list[uuid.UUID]) -> dict[uuid.UUID, UseCase]:
    if not ids:
        return {}
    rows = (await session.execute(select(UseCase).where(UseCase.id.in_(ids)))).scalars()
    return {u.id: u for u in rows}


# --------------------------------------------------------------------------- limits


def _require_manager(principal: Principal) -> None:
    if not principal.has_global("user:manage"):
        raise PermissionDenied("permission 'user:manage' is required to set or list limits")


async def subject_id(session: AsyncSession, scope: str, subject: str) -> uuid.UUID:
    """The id of an API key (its id or display prefix), a user (id or email) or a use case (id or key)."""
    if scope not in SCOPES:
        raise InvalidInput(f"scope must be one of {', '.join(SCOPES)} (got '{scope}')")
    if scope == "API_KEY":
        as_id = parse_uuid(subject)
        condition = ApiKey.id == as_id if as_id is not None else ApiKey.prefix == subject
        found = (await session.execute(select(ApiKey.id).where(condition, ApiKey.revoked_at.is_(None)))).scalars().all()
        if len(found) != 1:
            raise NotFound(f"API key '{subject}' not found" if not found else f"several API keys match '{subject}'")
        return found[0]
    if scope == "USER":
        as_id = parse_uuid(subject)
        user = await session.get(User, as_id) if as_id else None
        if user is None:
            user = (
                await session.execute(select(User).where(User.email == subject.strip().lower()))
            ).scalar_one_or_none()
        if user is None:
            raise NotFound(f"user '{subject}' not found")
        return user.id
    return (await get_by_id_or_key(session, UseCase, subject, f"use case '{subject}'")).id


def check_limits(values: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name in LIMIT_FIELDS:
        value = values.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0 or value != value
        ):
            raise InvalidInput(f"{name} must be a positive number, or null for no limit (got {value!r})")
        if (
            value is not None
            and name in ("requests_per_minute", "tokens_per_minute", "max_concurrent")
            and int(value) != value
        ):
            raise InvalidInput(f"{name} must be a whole number (got {value!r})")
        out[name] = value
    if all(v is None for v in out.values()):
        raise InvalidInput("set at least one limit (or remove the subject's limits with removeUsageLimits)")
    return out


async def set_limits(
    session: AsyncSession, principal: Principal, scope: str, subject: str, values: dict[str, Any]
) -> UsageLimit:
    """Set (replace) the limits of one subject; a null field is no limit."""
    _require_manager(principal)
    checked = check_limits(values)
    target = await subject_id(session, scope, subject)
    row = (
        await session.execute(select(UsageLimit).where(UsageLimit.scope == scope, UsageLimit.subject_id == target))
    ).scalar_one_or_none()
    if row is None:
        row = UsageLimit(scope=scope, subject_id=target)
        session.add(row)
    for name, value in checked.items():
        setattr(row, name, value)
    await session.flush()
    return row


async def remove_limits(session: AsyncSession, principal: Principal, scope: str, subject: str) -> bool:
    _require_manager(principal)
    target = await subject_id(session, scope, subject)
    row = (
        await session.execute(select(UsageLimit).where(UsageLimit.scope == scope, UsageLimit.subject_id == target))
    ).scalar_one_or_none()
    if row is None:
        return False
    await session.delete(row)
    await session.flush()
    return True


async def list_limits(session: AsyncSession, principal: Principal, scope: str | None = None) -> list[UsageLimit]:
    _require_manager(principal)
    statement = select(UsageLimit).order_by(UsageLimit.created_at)
    if scope is not None:
        if scope not in SCOPES:
            raise InvalidInput(f"scope must be one of {', '.join(SCOPES)} (got '{scope}')")
        statement = statement.where(UsageLimit.scope == scope)
    return list((await session.execute(statement)).scalars())


@dataclass
class OwnLimit:
    """A limit that applies to the caller, with what it has spent against the budgets."""

    row: UsageLimit
    spent_today: float
    spent_this_month: float


async def own_limits(session: AsyncSession, principal: Principal) -> list[OwnLimit]:
    """The limits set on the caller's API key and on the caller's user, with their spend so far."""
    subjects = [("USER", principal.user_id)]
    if principal.api_key_id is not None:
        subjects.insert(0, ("API_KEY", principal.api_key_id))
    out = []
    now = utcnow()
    for scope, subject in subjects:
        row = (
            await session.execute(select(UsageLimit).where(UsageLimit.scope == scope, UsageLimit.subject_id == subject))
        ).scalar_one_or_none()
        if row is None:
            continue
        today = await limits_module.spend(session, scope, subject, limits_module.day_start(now))
        month = await limits_module.spend(session, scope, subject, limits_module.month_start(now))
        out.append(OwnLimit(row, today, month))
    return out


# --------------------------------------------------------------------------- the official client's shapes


@dataclass
class PerUseCase:
    use_case: UseCase
    service: ModelService | None
    row: UsageRow


async def model_usage(session: AsyncSession, principal: Principal, model: str, query: UsageQuery) -> list[UsageRow]:
    """``modelUsage``: one model's usage per bucket."""
    query.model_keys = [(await model_of(session, model)).key]
    return await report(session, principal, query)


async def model_usage_by_use_case(
    session: AsyncSession, principal: Principal, model: str, query: UsageQuery
) -> list[PerUseCase]:
    """``modelUsageByUseCase``: one model's usage per use case (visible to the caller)."""
    found = await model_of(session, model)
    query.model_keys, query.group_by, query.unit = [found.key], ("USE_CASE",), "NO_GROUP_BY_DATE"
    rows = [r for r in await report(session, principal, query) if r.use_case_id is not None]
    use_cases = await use_cases_by_id(session, [r.use_case_id for r in rows if r.use_case_id])
    services = {
        s.use_case_id: s
        for s in (await session.execute(select(ModelService).where(ModelService.model_id == found.id))).scalars()
    }
    return [
        PerUseCase(use_cases[r.use_case_id], services.get(r.use_case_id), r) for r in rows if r.use_case_id in use_cases
    ]


@dataclass
class ByModel:
    model: Model | None
    model_key: str
    total: UsageRow
    series: list[UsageRow]


@dataclass
class GlobalUsage:
    total: UsageRow
    adaptive: UsageRow
    external: UsageRow
    by_model: list[ByModel]


async def global_usage(session: AsyncSession, principal: Principal, query: UsageQuery) -> GlobalUsage:
    """``globalUsage``: totals, local ("adaptive") and external models apart, and each model with its series."""
    totals = await report(session, principal, UsageQuery(query.since, query.until, "NO_GROUP_BY_DATE", ("MODEL",)))
    series = await report(session, principal, UsageQuery(query.since, query.until, query.unit, ("MODEL",)))
    models = await models_by_key(session, [r.model_key for r in totals if r.model_key])
    total, adaptive, external = UsageRow(None), UsageRow(None), UsageRow(None)
    by_model = []
    for row in totals:
        model = models.get(row.model_key or "")
        side = external if model is not None and model.is_external else adaptive
        for acc in (total, side):
            for name, value in row.sums.items():
                acc.sums[name] = acc.sums.get(name, 0) + value
        by_model.append(ByModel(model, row.model_key or "", row, [s for s in series if s.model_key == row.model_key]))
    return GlobalUsage(total, adaptive, external, by_model)
