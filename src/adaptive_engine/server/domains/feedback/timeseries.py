"""A feedback key's values over time in one use case: per time bucket (and per model), the count, the
mean (or sum) and a 95% interval of the mean, grouped by the database (see db/timebuckets.py) from the
hourly roll-ups, and from the rows for the partial hours at the range's edges (domains/interactions/rollups.py)."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.db.models import Completion, Feedback, FeedbackHourly
from adaptive_engine.server.db.timebuckets import (
    bucket_starts,
    calendar_start,
    seconds_bucket,
    sql_bucket,
)
from adaptive_engine.server.domains.interactions.rollups import (
    Span,
    gather,
    hourly_parts,
)
from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.timestamps import utcnow

AGGREGATIONS = ("AVERAGE", "SUM", "COUNT")
Z95 = 1.959964


@dataclass
class Series:
    model: str | None
    aggregation: str
    buckets: list[int]
    count: list[int] = field(default_factory=list)
    values: list[float | None] = field(default_factory=list)
    # (low, mean, high) of the mean per bucket; None where under two values.
    intervals: list[tuple[float, float, float] | None] = field(default_factory=list)


def dialect_of(session: AsyncSession) -> str:
    return session.bind.dialect.name if session.bind is not None else "sqlite"


async def metric_timeseries(
    session: AsyncSession,
    *,
    use_case_id: uuid.UUID,
    metric_id: uuid.UUID,
    interval: str,
    since: datetime | None,
    until: datetime | None,
    by_model: bool,
    aggregation: str = "AVERAGE",
) -> list[Series]:
    if aggregation not in AGGREGATIONS:
        raise InvalidInput(f"aggregation must be one of {', '.join(AGGREGATIONS)}")
    until = until or utcnow()
    if since is not None and since > until:
        raise InvalidInput("the time range ends before it starts")
    dialect = dialect_of(session)
    merged = not by_model

    async def raw(span: Span) -> list[Any]:
        bucket = sql_bucket(Feedback.created_at, dialect, interval).label("bucket")
        model = (null() if merged else Completion.model_key).label("model")
        query = select(
            model,
            bucket,
            func.count(Feedback.value).label("n"),
            func.sum(Feedback.value).label("total"),
            func.sum(Feedback.value * Feedback.value).label("total_sq"),
        ).where(
            Feedback.use_case_id == use_case_id, Feedback.metric_id == metric_id, *span.conditions(Feedback.created_at)
        )
        if not merged:
            query = query.join(Completion, Completion.id == Feedback.completion_id)
        return list((await session.execute(query.group_by(*([] if merged else [model]), bucket))).all())

    async def rolled(hours: list[Any]) -> list[Any]:
        bucket = seconds_bucket(FeedbackHourly.hour, interval).label("bucket")
        model = (null() if merged else FeedbackHourly.model_key).label("model")
        query = select(
            model,
            bucket,
            func.sum(FeedbackHourly.count).label("n"),
            func.sum(FeedbackHourly.total).label("total"),
            func.sum(FeedbackHourly.total_sq).label("total_sq"),
        ).where(FeedbackHourly.use_case_id == use_case_id, FeedbackHourly.metric_id == metric_id, *hours)
        return list((await session.execute(query.group_by(*([] if merged else [model]), bucket))).all())

    rows = await gather(hourly_parts(since, until), raw, rolled, FeedbackHourly.hour)
    if since is None:  # from the first value on
        if not rows:
            return []
        since = datetime.fromtimestamp(min(int(r.bucket) for r in rows), tz=until.tzinfo)
    starts = bucket_starts(since, until, interval)
    index = {start: i for i, start in enumerate(starts)}
    sums: dict[str | None, list[list[float]]] = {}
    for row in rows:
        start = calendar_start(int(row.bucket), interval)
        if start not in index:
            continue
        acc = sums.setdefault(row.model or None, [[0.0, 0.0, 0.0] for _ in starts])[index[start]]
        acc[0] += int(row.n)
        acc[1] += float(row.total or 0.0)
        acc[2] += float(row.total_sq or 0.0)
    return [
        _series(model_key, aggregation, starts, accs)
        for model_key, accs in sorted(sums.items(), key=lambda kv: kv[0] or "")
    ]


def _series(model: str | None, aggregation: str, starts: list[int], accs: list[list[float]]) -> Series:
    series = Series(model=model, aggregation=aggregation, buckets=starts)
    for n, total, total_sq in accs:
        count = int(n)
        mean = total / count if count else None
        series.count.append(count)
        series.values.append({"AVERAGE": mean, "SUM": total, "COUNT": float(count)}[aggregation])
        if count < 2 or mean is None:
            series.intervals.append(None)
            continue
        variance = max((total_sq - total * total / count) / (count - 1), 0.0)
        half = Z95 * math.sqrt(variance / count)
        series.intervals.append((mean - half, mean, mean + half))
    return series
