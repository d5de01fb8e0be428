"""GraphQL types of feedback keys (the wire protocol calls them metrics)."""

from __future__ import annotations

import enum
import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from adaptive_engine.server.domains.feedback.timeseries import metric_timeseries
from adaptive_engine.server.domains.feedback.timeseries_types import (
    TimeseriesInput,
    TimeseriesType,
    check_timezone,
    to_gql_timeseries,
)
from adaptive_engine.server.domains.feedback_keys import service as keys
from adaptive_engine.server.domains.feedback_keys.records import MetricRecord
from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.graphql.loaders import lookup
from adaptive_engine.server.timestamps import epoch


@strawberry.enum(name="MetricKind")
class MetricKind(enum.Enum):
    SCALAR = "SCALAR"
    BOOL = "BOOL"


@strawberry.enum(name="MetricScoringType")
class MetricScoringType(enum.Enum):
    HIGHER_IS_BETTER = "HIGHER_IS_BETTER"
    LOWER_IS_BETTER = "LOWER_IS_BETTER"


@strawberry.type
class MetricFields:
    """The fields every view of a feedback key shares (Metric and MetricWithContext)."""

    id: uuid.UUID
    key: str
    name: str
    kind: MetricKind
    description: str
    scoring_type: MetricScoringType
    created_at: int


def _metric_fields(metric: MetricRecord) -> dict[str, Any]:
    return {
        "id": metric.id,
        "key": metric.key,
        "name": metric.name,
        "kind": MetricKind(metric.kind),
        "description": metric.description,
        "scoring_type": MetricScoringType(metric.scoring_type),
        "created_at": epoch(metric.created_at) or 0,
    }


@strawberry.type(name="MetricWithContext")
class MetricWithContextType(MetricFields):
    """A feedback key as seen from one use case."""

    # The use case it is seen from (its parent field checked that the caller may read it).
    use_case_id: strawberry.Private[uuid.UUID | None] = None

    @strawberry.field(description="Values of this key in the use case per time bucket (UTC), per model with byModel")
    async def timeseries(
        self,
        info: Info,
        input: TimeseriesInput,  # noqa: A002 - the official client's argument name
    ) -> list[TimeseriesType]:
        if self.use_case_id is None:
            raise InvalidInput("a time series needs the feedback key of a use case")
        check_timezone(input.timezone)
        since, until = input.timerange.bounds if input.timerange is not None else (None, None)
        series = await metric_timeseries(
            info.context.session,
            use_case_id=self.use_case_id,
            metric_id=self.id,
            interval=input.interval.value,
            since=since,
            until=until,
            by_model=input.by_model,
            aggregation=input.aggregation.value,
        )
        return [to_gql_timeseries(s) for s in series]


def to_gql_metric_with_context(metric: MetricRecord, use_case_id: uuid.UUID | None = None) -> MetricWithContextType:
    return MetricWithContextType(**_metric_fields(metric), use_case_id=use_case_id)


@strawberry.type(name="MetricUseCase")
class MetricUseCaseType:
    """A use case a feedback key is linked to (the fields the key's listing shows)."""

    id: uuid.UUID
    key: str
    name: str
    description: str


# For all the keys of a list at once: the use cases each is linked to, and whether it has feedback.
USE_CASES_OF_KEY = lookup(keys.use_cases_of_keys, missing=list)
FEEDBACK_FLAGS = lookup(keys.feedback_flags, missing=lambda: (False, False))


@strawberry.type(name="Metric")
class MetricType(MetricFields):
    """A feedback key."""

    # (has direct feedbacks, has comparison feedbacks) when the caller computed them for a whole page.
    flags: strawberry.Private[tuple[bool, bool] | None] = None

    @strawberry.field
    async def use_cases(self, info: strawberry.Info) -> list[MetricUseCaseType]:
        loaders = info.context.loaders
        linked = await loaders.readable(await loaders.load(USE_CASES_OF_KEY, self.id))
        return [MetricUseCaseType(id=u.id, key=u.key, name=u.name, description=u.description) for u in linked]

    @strawberry.field
    async def has_direct_feedbacks(self, info: strawberry.Info) -> bool:
        if self.flags is not None:
            return self.flags[0]
        return (await info.context.loaders.load(FEEDBACK_FLAGS, self.id))[0]

    @strawberry.field
    async def has_comparison_feedbacks(self, info: strawberry.Info) -> bool:
        if self.flags is not None:
            return self.flags[1]
        return (await info.context.loaders.load(FEEDBACK_FLAGS, self.id))[1]


def to_gql_metric(metric: MetricRecord, flags: tuple[bool, bool] | None = None) -> MetricType:
    """``flags``: (has direct feedbacks, has comparison feedbacks) when known; else loaded when asked for."""
    return MetricType(**_metric_fields(metric), flags=flags)
