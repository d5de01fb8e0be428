"""GraphQL of traffic over time: ``activity`` (the official client's totals of a window, with their trend) and
``activityTimeseries`` (per bucket and model), on a use case and on a model."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import strawberry
from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.types import Info

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.domains.feedback.timeseries_types import (
    TimeseriesInterval,
    check_timezone,
)
from adaptive_engine.server.domains.interactions import activity
from adaptive_engine.server.domains.models.records import ModelRecord
from adaptive_engine.server.domains.models.types import to_gql_model
from adaptive_engine.server.graphql.common import TimeRange
from adaptive_engine.server.graphql.loaders import row
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


@strawberry.type(
    name="ActivityTimeseries",
    description="Traffic per time bucket (epoch seconds of each bucket's "
    "start): interactions, tokens, latency and failed calls",
)
class ActivityTimeseriesType:
    series: strawberry.Private[activity.ActivitySeries]

    @strawberry.field
    async def model(
        self, info: Info
    ) -> Annotated[ModelType, strawberry.lazy("adaptive_engine.server.domains.models.types")] | None:

        if self.series.model is None:
            return None
        found = await info.context.loaders.load(row(orm.Model.key), self.series.model)
        return to_gql_model(ModelRecord.of(found)) if found is not None else None

    @strawberry.field(description="The model key of the series (byModel), also when the model was deleted")
    def model_key(self) -> str | None:
        return self.series.model

    @strawberry.field
    def time_buckets(self) -> list[int]:
        return self.series.buckets

    @strawberry.field(description="Completions served or logged")
    def interactions(self) -> list[int]:
        return self.series.interactions

    @strawberry.field
    def prompt_tokens(self) -> list[int]:
        return self.series.prompt_tokens

    @strawberry.field
    def completion_tokens(self) -> list[int]:
        return self.series.completion_tokens

    @strawberry.field(description="Mean latency (ms) of the completions that have one; null when none")
    def latency_mean_ms(self) -> list[float | None]:
        return self.series.latency_mean_ms

    @strawberry.field(description="Highest latency (ms); null when none")
    def latency_max_ms(self) -> list[float | None]:
        return self.series.latency_max_ms

    @strawberry.field(description="Model calls of the gateway that failed")
    def errors(self) -> list[int]:
        return self.series.errors


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
    return [ActivityTimeseriesType(series=s) for s in series]
