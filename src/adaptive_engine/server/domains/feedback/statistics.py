"""Sufficient statistics of feedback, computed by the database (same SQL on SQLite and PostgreSQL); metric
keys from the hourly roll-ups plus the rows of a range's partial edge hours (domains/interactions/rollups.py).

* metric keys: per use case, feedback key and (optionally) model: count, sum, sum of squares, mean,
  sample variance, min and max;
* preference keys: per use case, key and unordered model pair (model_a <= model_b): wins of a, wins of
  b, ties judged good and ties judged bad.

A/B tests, evaluation and the UI read these; filters narrow them to an A/B campaign, models or a time
range.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, literal_column, null, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from adaptive_engine.server.db.models import Comparison, Completion, Feedback, FeedbackHourly
from adaptive_engine.server.domains.interactions.rollups import Span, gather, hourly_parts


@dataclass(frozen=True)
class StatsFilter:
    use_case_id: uuid.UUID | None = None
    metric_id: uuid.UUID | None = None
    ab_campaign_id: uuid.UUID | None = None
    models: tuple[str, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass
class MetricStats:
    use_case_id: uuid.UUID
    metric_id: uuid.UUID
    model: str | None
    count: int
    sum: float
    sum_of_squares: float
    mean: float | None
    variance: float | None
    min: float | None
    max: float | None


@dataclass
class PreferenceStats:
    use_case_id: uuid.UUID
    metric_id: uuid.UUID
    model_a: str | None
    model_b: str | None
    wins_a: int
    wins_b: int
    ties_good: int
    ties_bad: int

    @property
    def ties(self) -> int:
        return self.ties_good + self.ties_bad

    @property
    def total(self) -> int:
        return self.wins_a + self.wins_b + self.ties


def _time_filters(column: Any, flt: StatsFilter) -> list[Any]:
    out = []
    if flt.since is not None:
        out.append(column >= flt.since)
    if flt.until is not None:
        out.append(column <= flt.until)
    return out


# No upper bound given: everything, future-dated feedback included (a roll-up range needs an end).
END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)


async def metric_statistics(session: AsyncSession, flt: StatsFilter, *, by_model: bool = True) -> list[MetricStats]:
    """Read from the hourly roll-ups and the rows of the range's partial edge hours; an A/B campaign's own
    (its completions are tagged, the roll-ups do not know campaigns) from the rows alone."""
    until = flt.until or END_OF_TIME

    async def raw(span: Span) -> list[Any]:
        value = Feedback.value
        model = Completion.model_key if by_model else null()
        query = select(
            Feedback.use_case_id,
            Feedback.metric_id,
            model.label("model"),
            func.count(value).label("n"),
            func.sum(value).label("total"),
            func.sum(value * value).label("total_sq"),
            func.min(value).label("low"),
            func.max(value).label("high"),
        ).join(Completion, Completion.id == Feedback.completion_id)
        conditions = [*_key_filters(Feedback, flt), *span.conditions(Feedback.created_at)]
        if flt.ab_campaign_id is not None:
            conditions.append(Completion.ab_campaign_id == flt.ab_campaign_id)
        if flt.models is not None:
            conditions.append(Completion.model_key.in_(flt.models))
        group = [Feedback.use_case_id, Feedback.metric_id] + ([Completion.model_key] if by_model else [])
        return list((await session.execute(query.where(*conditions).group_by(*group))).all())

    async def rolled(hours: list[Any]) -> list[Any]:
        model = FeedbackHourly.model_key if by_model else null()
        query = select(
            FeedbackHourly.use_case_id,
            FeedbackHourly.metric_id,
            model.label("model"),
            func.sum(FeedbackHourly.count).label("n"),
            func.sum(FeedbackHourly.total).label("total"),
            func.sum(FeedbackHourly.total_sq).label("total_sq"),
            func.min(FeedbackHourly.min_value).label("low"),
            func.max(FeedbackHourly.max_value).label("high"),
        ).where(*_key_filters(FeedbackHourly, flt), *hours)
        if flt.models is not None:
            query = query.where(FeedbackHourly.model_key.in_(flt.models))
        group = [FeedbackHourly.use_case_id, FeedbackHourly.metric_id] + (
            [FeedbackHourly.model_key] if by_model else []
        )
        return list((await session.execute(query.group_by(*group))).all())

    if flt.ab_campaign_id is not None:
        rows = await raw(Span(flt.since, until, closed=True))
    else:
        rows = await gather(hourly_parts(flt.since, until), raw, rolled, FeedbackHourly.hour)
    sums: dict[tuple[uuid.UUID, uuid.UUID, str | None], list[float]] = {}
    for row in rows:
        acc = sums.setdefault(
            (row.use_case_id, row.metric_id, row.model or None), [0, 0.0, 0.0, float("inf"), float("-inf")]
        )
        acc[0] += int(row.n)
        acc[1] += float(row.total or 0.0)
        acc[2] += float(row.total_sq or 0.0)
        acc[3] = min(acc[3], float(row.low))
        acc[4] = max(acc[4], float(row.high))
    out = []
    for (use_case_id, metric_id, model_key), (n, total, total_sq, low, high) in sorted(
        sums.items(), key=lambda kv: (str(kv[0][0]), str(kv[0][1]), kv[0][2] or "")
    ):
        count = int(n)
        # Sample variance from the sums; rounding can dip just under zero.
        variance = max((total_sq - total * total / count) / (count - 1), 0.0) if count > 1 else None
        out.append(
            MetricStats(
                use_case_id=use_case_id,
                metric_id=metric_id,
                model=model_key,
                count=count,
                sum=total,
                sum_of_squares=total_sq,
                mean=total / count,
                variance=variance,
                min=low,
                max=high,
            )
        )
    return out


def _key_filters(table: Any, flt: StatsFilter) -> list[Any]:
    out = []
    if flt.use_case_id is not None:
        out.append(table.use_case_id == flt.use_case_id)
    if flt.metric_id is not None:
        out.append(table.metric_id == flt.metric_id)
    return out


async def preference_statistics(session: AsyncSession, flt: StatsFilter) -> list[PreferenceStats]:
    preferred, other = aliased(Completion), aliased(Completion)
    p_model = func.coalesce(preferred.model_key, literal_column("''"))
    o_model = func.coalesce(other.model_key, literal_column("''"))
    a_first = p_model <= o_model
    model_a = case((a_first, p_model), else_=o_model)
    model_b = case((a_first, o_model), else_=p_model)
    not_tied = Comparison.tied.is_(None)
    query = (
        select(
            Comparison.use_case_id,
            Comparison.metric_id,
            model_a.label("model_a"),
            model_b.label("model_b"),
            func.sum(case((not_tied & a_first, 1), else_=0)).label("wins_a"),
            func.sum(case((not_tied & ~a_first, 1), else_=0)).label("wins_b"),
            func.sum(case((Comparison.tied == "good", 1), else_=0)).label("ties_good"),
            func.sum(case((Comparison.tied == "bad", 1), else_=0)).label("ties_bad"),
        )
        .join(preferred, preferred.id == Comparison.preferred_completion_id)
        .join(other, other.id == Comparison.other_completion_id)
    )
    conditions = _time_filters(Comparison.created_at, flt)
    if flt.use_case_id is not None:
        conditions.append(Comparison.use_case_id == flt.use_case_id)
    if flt.metric_id is not None:
        conditions.append(Comparison.metric_id == flt.metric_id)
    if flt.ab_campaign_id is not None:
        conditions.append(
            or_(preferred.ab_campaign_id == flt.ab_campaign_id, other.ab_campaign_id == flt.ab_campaign_id)
        )
    if flt.models is not None:
        conditions.append(preferred.model_key.in_(flt.models) & other.model_key.in_(flt.models))
    # Group by the output names: the same CASE expression twice would not match on PostgreSQL.
    group = [Comparison.use_case_id, Comparison.metric_id, literal_column("model_a"), literal_column("model_b")]
    query = query.where(*conditions).group_by(*group).order_by(*group)
    return [
        PreferenceStats(
            use_case_id=row.use_case_id,
            metric_id=row.metric_id,
            model_a=row.model_a or None,
            model_b=row.model_b or None,
            wins_a=int(row.wins_a or 0),
            wins_b=int(row.wins_b or 0),
            ties_good=int(row.ties_good or 0),
            ties_bad=int(row.ties_bad or 0),
        )
        for row in (await session.execute(query)).all()
    ]
