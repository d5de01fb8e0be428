"""GraphQL of traffic over time: ``activity`` (the official client's totals of a window, with their trend) and
``activityTimeseries`` (per bucket and model), on a use case and on a model."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from adaptive_engine.server.domains.feedback.timeseries_types import (
    MODELS_BY_KEY,
    TimeseriesInterval,
    check_timezone,
)
from adaptive_engine.server.domains.interactions import activity
from adaptive_engine.server.domains.models.types import to_gql_model
from adaptive_engine.server.graphql.common import TimeRange
from adaptive_engine.server.timestamps import utcnow

if TYPE_CHECKING:
    from adaptive_engine.server.domains.models.types import ModelType

DEFAULT_WINDOW = timedelta(hours=24)


@strawberry.type(name="InteractionOutput")
class InteractionOutput:
    value: int
    per_second: float = strawberry.field(description="Interactions per second over the window")
    trend: float | None = strawberry.field(
        description="Change against the window of the same length just before, as a fraction (0.5: +50%); "
        "null when that window had none"
    )


@strawberry.type(name="ActivityOutput")
class ActivityOutput:
    value: int
    trend: float | None = strawberry.field(description="As InteractionOutput.trend")


@strawberry.type(name="Activity", description="Traffic of a time window (default: the last 24 hours)")
class ActivityType:
    interactions: InteractionOutput
    feedbacks: ActivityOutput = strawberry.field(description="Metric feedback logged in the window")
    errors: ActivityOutput = strawberry.field(description="Model calls of the gateway that failed in the window")


def _trend(now: int, before: int) -> float | None:
    return (now - before) / before if before else None


async def resolve_activity(
    session: AsyncSession, scope: activity.Scope, timerange: TimeRange | None, model_key: str | None = None
) -> ActivityType:
    if timerange is not None:
        since, until = timerange.bounds
    else:
        until = utcnow()
        since = until - DEFAULT_WINDOW
    activity.check_range(since, until)
    now = await activity.totals(session, scope=scope, since=since, until=until, model_key=model_key)
    prev_since, prev_until = activity.previous_window(since, until)
    before = await activity.totals(session, scope=scope, since=prev_since, until=prev_until, model_key=model_key)
    seconds = max((until - since).total_seconds(), 1.0)
    return ActivityType(
        interactions=InteractionOutput(
            value=now.interactions,
            per_second=now.interactions / seconds,
            trend=_trend(now.interactions, before.interactions),
        ),
        feedbacks=ActivityOutput(value=now.feedbacks, trend=_trend(now.feedbacks, before.feedbacks)),
        errors=ActivityOutput(value=now.errors, trend=_trend(now.errors, before.errors)),
    )


@strawberry.input(name="ActivityTimeseriesInput")
class ActivityTimeseriesInput:
    interval: TimeseriesInterval
    timerange: TimeRange | None = strawberry.field(default=None, description="Default: from the first traffic to now")
    timezone: str | None = strawberry.field(default=None, description="Only UTC (or null) is supported")
    by_model: bool = False


async def _series_model(
    root: ActivityTimeseriesType, info: Info
) -> Annotated[ModelType, strawberry.lazy("adaptive_engine.server.domains.models.types")] | None:
    if root.model_key is None:
        return None
    found = await info.context.loaders.load(MODELS_BY_KEY, root.model_key)
    return to_gql_model(found) if found is not None else None


@strawberry.type(
    name="ActivityTimeseries",
    description="Traffic per time bucket (epoch seconds of each bucket's "
    "start): interactions, tokens, latency and failed calls",
)
class ActivityTimeseriesType:
    # Declared first: the wire's field order has the model first.
    model: Annotated[ModelType, strawberry.lazy("adaptive_engine.server.domains.models.types")] | None = (
        strawberry.field(resolver=_series_model)
    )
    model_key: str | None = strawberry.field(
        description="The model key of the series (byModel), also when the model was deleted"
    )
    time_buckets: list[int]
    interactions: list[int] = strawberry.field(description="Completions served or logged")
    prompt_tokens: list[int]
    completion_tokens: list[int]
    latency_mean_ms: list[float | None] = strawberry.field(
        description="Mean latency (ms) of the completions that have one; null when none"
    )
    latency_max_ms: list[float | None] = strawberry.field(description="Highest latency (ms); null when none")
    errors: list[int] = strawberry.field(description="Model calls of the gateway that failed")


def to_gql_activity_series(series: activity.ActivitySeries) -> ActivityTimeseriesType:
    return ActivityTimeseriesType(
        model_key=series.model,
        time_buckets=series.buckets,
        interactions=series.interactions,
        prompt_tokens=series.prompt_tokens,
        completion_tokens=series.completion_tokens,
        latency_mean_ms=series.latency_mean_ms,
        latency_max_ms=series.latency_max_ms,
        errors=series.errors,
    )


async def resolve_timeseries(
    session: AsyncSession,
    scope: activity.Scope,
    input: ActivityTimeseriesInput,  # noqa: A002
    model_key: str | None = None,
) -> list[ActivityTimeseriesType]:
    check_timezone(input.timezone)
    since, until = input.timerange.bounds if input.timerange is not None else (None, None)
    series = await activity.activity_timeseries(
        session,
        scope=scope,
        interval=input.interval.value,
        since=since,
        until=until,
        by_model=input.by_model,
        model_key=model_key,
    )
    return [to_gql_activity_series(s) for s in series]
