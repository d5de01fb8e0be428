"""A feedback key's values over time in one use case: per time bucket (and per model), the count, the
mean (or sum) and a 95% interval of the mean, grouped by the database (see db/timebuckets.py)."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, null, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.db.models import Completion, Feedback
from adaptive_engine.server.db.timebuckets import bucket_starts, calendar_start, sql_bucket
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
    bucket = sql_bucket(Feedback.created_at, dialect_of(session), interval).label("bucket")
    model = (Completion.model_key if by_model else null()).label("model")
    conditions = [Feedback.use_case_id == use_case_id, Feedback.metric_id == metric_id, Feedback.created_at <= until]
    if since is not None:
        conditions.append(Feedback.created_at >= since)
    query = select(model, bucket, func.count(Feedback.value).label("n"), func.sum(Feedback.value).label("total"),
                   func.sum(Feedback.value * Feedback.value).label("total_sq")).where(*conditions)
    if by_model:
        query = query.join(Completion, Completion.id == Feedback.completion_id)
    query = query.group_by(*([model] if by_model else []), bucket)
    rows = (await session.execute(query)).all()
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
        acc = sums.setdefault(row.model, [[0.0, 0.0, 0.0] for _ in starts])[index[start]]
        acc[0] += int(row.n)
        acc[1] += float(row.total or 0.0)
        acc[2] += float(row.total_sq or 0.0)
    return [_series(model_key, aggregation, starts, accs) for model_key, accs in sorted(sums.items(), key=lambda kv: kv[0] or "")]


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
