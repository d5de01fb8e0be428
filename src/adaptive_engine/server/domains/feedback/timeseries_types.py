"""GraphQL of a feedback key's time series (``MetricWithContext.timeseries``), with the official client's names."""

from __future__ import annotations

import enum

import strawberry
from strawberry.types import Info

from adaptive_engine.server.domains.feedback.timeseries import Series
from adaptive_engine.server.domains.models.service import models_by_key
from adaptive_engine.server.domains.models.types import ModelType, to_gql_model
from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.graphql.common import TimeRange
from adaptive_engine.server.graphql.loaders import lookup


@strawberry.enum(name="TimeseriesInterval")
class TimeseriesInterval(enum.Enum):
    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    QUARTER = "QUARTER"
    YEAR = "YEAR"
    MILLENNIUM = "MILLENNIUM"


@strawberry.enum(name="MetricAggregation")
class MetricAggregation(enum.Enum):
    AVERAGE = "AVERAGE"
    SUM = "SUM"
    COUNT = "COUNT"


def check_timezone(name: str | None) -> None:
    if name not in (None, "UTC", "Etc/UTC"):
        raise InvalidInput(f"time zone '{name}' is not supported: buckets are in UTC")


@strawberry.input(name="TimeseriesInput")
class TimeseriesInput:
    interval: TimeseriesInterval
    timerange: TimeRange | None = None
    # Buckets are UTC; the field exists because the official client sends it.
    timezone: str | None = strawberry.field(default=None, description="Only UTC (or null) is supported")
    by_model: bool = False
    aggregation: MetricAggregation = MetricAggregation.AVERAGE


@strawberry.type(name="Interval")
class IntervalType:
    start: float
    middle: float
    end: float


# The models of a page of series, by key, at once.
MODELS_BY_KEY = lookup(models_by_key)


async def _series_model(root: TimeseriesType, info: Info) -> ModelType | None:
    if root.model_key is None:
        return None
    found = await info.context.loaders.load(MODELS_BY_KEY, root.model_key)
    return to_gql_model(found) if found is not None else None


@strawberry.type(name="Timeseries", description="Values per time bucket (epoch seconds of each bucket's start)")
class TimeseriesType:
    # Declared first: the wire's field order has the model first.
    model: ModelType | None = strawberry.field(resolver=_series_model)
    model_key: str | None = strawberry.field(
        description="The model key of the series (by_model), also when the model was deleted"
    )
    time_buckets: list[int]
    count: list[int]
    values: list[float | None] = strawberry.field(
        description="The aggregation per bucket; null for the mean of an empty bucket"
    )
    intervals: list[IntervalType | None] = strawberry.field(
        description="95% interval of the mean per bucket (normal approximation); null under two values"
    )
    aggregation: MetricAggregation


def to_gql_timeseries(series: Series) -> TimeseriesType:
    return TimeseriesType(
        model_key=series.model,
        time_buckets=series.buckets,
        count=series.count,
        values=series.values,
        intervals=[IntervalType(start=i[0], middle=i[1], end=i[2]) if i else None for i in series.intervals],
        aggregation=MetricAggregation(series.aggregation),
    )
