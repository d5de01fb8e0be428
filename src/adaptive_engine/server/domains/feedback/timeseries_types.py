"""GraphQL of a feedback key's time series (``MetricWithContext.timeseries``), with the official client's names."""

from __future__ import annotations

import enum

import strawberry
from strawberry.types import Info

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.domains.feedback.timeseries import Series
from adaptive_engine.server.domains.models.records import ModelRecord
from adaptive_engine.server.domains.models.types import ModelType, to_gql_model
from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.graphql.common import TimeRange
from adaptive_engine.server.graphql.loaders import row


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


@strawberry.type(name="Timeseries", description="Values per time bucket (epoch seconds of each bucket's start)")
class TimeseriesType:
    series: strawberry.Private[Series]

    @strawberry.field
    async def model(self, info: Info) -> ModelType | None:
        if self.series.model is None:
            return None
        found = await info.context.loaders.load(row(orm.Model.key), self.series.model)
        return to_gql_model(ModelRecord.of(found)) if found is not None else None

    @strawberry.field(description="The model key of the series (by_model), also when the model was deleted")
    def model_key(self) -> str | None:
        return self.series.model

    @strawberry.field
    def time_buckets(self) -> list[int]:
        return self.series.buckets

    @strawberry.field
    def count(self) -> list[int]:
        return self.series.count

    @strawberry.field(description="The aggregation per bucket; null for the mean of an empty bucket")
    def values(self) -> list[float | None]:
        return self.series.values

    @strawberry.field(description="95% interval of the mean per bucket (normal approximation); null under two values")
    def intervals(self) -> list[IntervalType | None]:
        return [IntervalType(start=i[0], middle=i[1], end=i[2]) if i else None for i in self.series.intervals]

    @strawberry.field
    def aggregation(self) -> MetricAggregation:
        return MetricAggregation(self.series.aggregation)
