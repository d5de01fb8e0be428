"""Traffic over time: interactions, tokens, latency and failed calls per time bucket (and per model), and
the totals of a time window with their trend; from the hourly roll-ups plus the rows of the partial hours
at the range's edges (rollups.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, literal, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.db.base import utcnow
from adaptive_engine.server.db.models import Completion, Feedback, FeedbackHourly, InferenceError, TrafficHourly
from adaptive_engine.server.db.timebuckets import bucket_starts, calendar_start, seconds_bucket, sql_bucket
from adaptive_engine.server.domains.interactions.rollups import Span, gather, hourly_parts
from adaptive_engine.server.errors import InvalidInput

# Which traffic: a condition on a use_case_id column, and a model key (None: every model).
Scope = Callable[[Any], Any]
FIELDS = (
    "interactions",
    "prompt_tokens",
    "completion_tokens",
    "latency_count",
    "latency_sum_ms",
    "latency_max_ms",
    "errors",
)


@dataclass
class ActivitySeries:
    model: str | None
    buckets: list[int]
    interactions: list[int] = field(default_factory=list)
    prompt_tokens: list[int] = field(default_factory=list)
    completion_tokens: list[int] = field(default_factory=list)
    latency_mean_ms: list[float | None] = field(default_factory=list)
    latency_max_ms: list[float | None] = field(default_factory=list)
    errors: list[int] = field(default_factory=list)


def _dialect(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


def check_range(since: datetime | None, until: datetime | None) -> datetime:
    until = until or utcnow()
    if since is not None and since > until:
        raise InvalidInput("the time range ends before it starts")
    return until


async def _traffic(
    session: AsyncSession,
    scope: Scope,
    model_key: str | None,
    since: datetime | None,
    until: datetime,
    interval: str | None,
    by_model: bool,
) -> list[tuple[str | None, int, dict[str, float]]]:
    """(model, bucket start, sums) rows; ``interval`` None: one bucket (0) for the whole range."""
    dialect = _dialect(session)

    def keys(model_column: Any, bucket: Any) -> tuple[Any, Any]:
        return (model_column if by_model else null()).label("model"), bucket.label("bucket")

    def grouped(query: Any, model: Any, bucket: Any) -> Any:
        return query.group_by(*([model] if by_model else []), bucket)

    def raw_bucket(column: Any) -> Any:
        return sql_bucket(column, dialect, interval) if interval else literal(0)

    async def raw(span: Span) -> list[tuple[str | None, int, dict[str, float]]]:
        model, bucket = keys(Completion.model_key, raw_bucket(Completion.created_at))
        where = [scope(Completion.use_case_id), *span.conditions(Completion.created_at)]
        if model_key is not None:
            where.append(Completion.model_key == model_key)
        query = select(
            model,
            bucket,
            func.count().label("interactions"),
            func.coalesce(func.sum(Completion.prompt_tokens), 0).label("prompt_tokens"),
            func.coalesce(func.sum(Completion.completion_tokens), 0).label("completion_tokens"),
            func.count(Completion.latency_ms).label("latency_count"),
            func.coalesce(func.sum(Completion.latency_ms), 0).label("latency_sum_ms"),
            func.coalesce(func.max(Completion.latency_ms), 0).label("latency_max_ms"),
        ).where(*where)
        out = [
            (r.model, int(r.bucket), {**_numbers(r), "errors": 0})
            for r in await session.execute(grouped(query, model, bucket))
        ]
        model, bucket = keys(InferenceError.model_key, raw_bucket(InferenceError.created_at))
        where = [scope(InferenceError.use_case_id), *span.conditions(InferenceError.created_at)]
        if model_key is not None:
            where.append(InferenceError.model_key == model_key)
        query = select(model, bucket, func.count().label("errors")).where(*where)
        out += [
            (r.model, int(r.bucket), {"errors": int(r.errors)})
            for r in await session.execute(grouped(query, model, bucket))
        ]
        return out

    async def rolled(hours: list[Any]) -> list[tuple[str | None, int, dict[str, float]]]:
        model, bucket = keys(
            TrafficHourly.model_key, seconds_bucket(TrafficHourly.hour, interval) if interval else literal(0)
        )
        where = [scope(TrafficHourly.use_case_id), *hours]
        if model_key is not None:
            where.append(TrafficHourly.model_key == model_key)
        sums = [func.sum(getattr(TrafficHourly, c)).label(c) for c in FIELDS if c != "latency_max_ms"]
        query = select(model, bucket, *sums, func.max(TrafficHourly.latency_max_ms).label("latency_max_ms")).where(
            *where
        )
        return [(r.model, int(r.bucket), _numbers(r)) for r in await session.execute(grouped(query, model, bucket))]

    return await gather(hourly_parts(since, until), raw, rolled, TrafficHourly.hour)


def _numbers(row: Any) -> dict[str, float]:
    # PostgreSQL sums integers as numeric (Decimal).
    return {name: float(row._mapping[name] or 0) for name in FIELDS if name in row._mapping}


def _fold(
    rows: list[tuple[str | None, int, dict[str, float]]], index: dict[int, int], size: int, interval: str
) -> dict[str | None, list[dict[str, float]]]:
    out: dict[str | None, list[dict[str, float]]] = {}
    for model, bucket, values in rows:
        start = calendar_start(bucket, interval)
        if start not in index:
            continue
        acc = out.setdefault(model or None, [dict.fromkeys(FIELDS, 0) for _ in range(size)])[index[start]]
        for name in FIELDS:
            value = values.get(name) or 0
            acc[name] = max(acc[name], value) if name == "latency_max_ms" else acc[name] + value
    return out


async def activity_timeseries(
    session: AsyncSession,
    *,
    scope: Scope,
    interval: str,
    since: datetime | None,
    until: datetime | None,
    by_model: bool,
    model_key: str | None = None,
) -> list[ActivitySeries]:
    until = check_range(since, until)
    rows = await _traffic(session, scope, model_key, since, until, interval, by_model)
    if since is None:  # from the first bucket with traffic on
        if not rows:
            return []
        since = datetime.fromtimestamp(min(bucket for _, bucket, _ in rows), tz=until.tzinfo)
    starts = bucket_starts(since, until, interval)
    folded = _fold(rows, {s: i for i, s in enumerate(starts)}, len(starts), interval)
    out = []
    for model, accs in sorted(folded.items(), key=lambda kv: kv[0] or ""):
        series = ActivitySeries(model=model, buckets=starts)
        for acc in accs:
            series.interactions.append(int(acc["interactions"]))
            series.prompt_tokens.append(int(acc["prompt_tokens"]))
            series.completion_tokens.append(int(acc["completion_tokens"]))
            has_latency = acc["latency_count"] > 0
            series.latency_mean_ms.append(acc["latency_sum_ms"] / acc["latency_count"] if has_latency else None)
            series.latency_max_ms.append(float(acc["latency_max_ms"]) if has_latency else None)
            series.errors.append(int(acc["errors"]))
        out.append(series)
    return out


@dataclass
class Totals:
    interactions: int
    feedbacks: int
    errors: int


async def totals(
    session: AsyncSession, *, scope: Scope, since: datetime, until: datetime, model_key: str | None = None
) -> Totals:
    """Interactions, metric feedback and failed calls of a time window."""
    traffic = {name: 0.0 for name in FIELDS}
    for _, _, values in await _traffic(session, scope, model_key, since, until, None, by_model=False):
        for name in ("interactions", "errors"):
            traffic[name] += values.get(name) or 0

    async def raw(span: Span) -> list[int]:
        query = (
            select(func.count())
            .select_from(Feedback)
            .where(scope(Feedback.use_case_id), *span.conditions(Feedback.created_at))
        )
        if model_key is not None:
            query = query.join(Completion, Completion.id == Feedback.completion_id).where(
                Completion.model_key == model_key
            )
        return [int((await session.execute(query)).scalar_one())]

    async def rolled(hours: list[Any]) -> list[int]:
        query = select(func.coalesce(func.sum(FeedbackHourly.count), 0)).where(
            scope(FeedbackHourly.use_case_id), *hours
        )
        if model_key is not None:
            query = query.where(FeedbackHourly.model_key == model_key)
        return [int((await session.execute(query)).scalar_one())]

    feedbacks = sum(await gather(hourly_parts(since, until), raw, rolled, FeedbackHourly.hour))
    return Totals(interactions=int(traffic["interactions"]), feedbacks=feedbacks, errors=int(traffic["errors"]))


def previous_window(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The window of the same length just before ``since`` (what a trend compares with)."""
    length = until - since
    return since - length, since - timedelta(microseconds=1)
