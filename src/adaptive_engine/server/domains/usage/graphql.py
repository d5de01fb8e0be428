"""GraphQL: usage (the official client's ``modelUsage``, ``modelUsageByUseCase``, ``globalUsage``, and the
console's ``usageReport``), limits (``setUsageLimits``, ``removeUsageLimits``, ``usageLimits``, ``myLimits``)."""

from __future__ import annotations

import enum
import uuid
from typing import TypedDict

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import authenticated
from adaptive_engine.server.domains.feedback.timeseries_types import check_timezone
from adaptive_engine.server.domains.models.records import ModelRecord, ModelServiceRecord
from adaptive_engine.server.domains.models.types import ModelServiceType, ModelType, to_gql_model, to_gql_model_service
from adaptive_engine.server.domains.usage import service
from adaptive_engine.server.graphql.common import TimeRange
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.scalars import IdOrKey


@strawberry.enum(name="DateBucketUnit")
class DateBucketUnit(enum.Enum):
    MINUTE = "MINUTE"
    HOUR = "HOUR"
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    QUARTER = "QUARTER"
    YEAR = "YEAR"
    NO_GROUP_BY_DATE = "NO_GROUP_BY_DATE"


@strawberry.enum(name="UsageDimension")
class UsageDimension(enum.Enum):
    MODEL = "MODEL"
    USE_CASE = "USE_CASE"
    API_KEY = "API_KEY"
    USER = "USER"


@strawberry.enum(name="UsageLimitScope")
class UsageLimitScope(enum.Enum):
    API_KEY = "API_KEY"
    USER = "USER"
    USE_CASE = "USE_CASE"


@strawberry.input(name="UsageFilterInput")
class UsageFilterInput:
    model_id: IdOrKey
    unit: DateBucketUnit
    timerange: TimeRange | None = None
    timezone: str | None = None


@strawberry.input(name="UsagePerUseCaseFilterInput")
class UsagePerUseCaseFilterInput:
    model_id: IdOrKey
    timerange: TimeRange | None = None


@strawberry.input(name="GlobalUsageFilterInput")
class GlobalUsageFilterInput:
    interval: DateBucketUnit
    timerange: TimeRange | None = strawberry.field(default=None, description="None: all time")
    timezone: str | None = None


@strawberry.input(name="UsageReportInput", description="Usage from the roll-ups, per bucket and per group")
class UsageReportInput:
    unit: DateBucketUnit = DateBucketUnit.NO_GROUP_BY_DATE
    timerange: TimeRange | None = None
    group_by: list[UsageDimension] = strawberry.field(default_factory=list)
    models: list[str] | None = strawberry.field(default=None, description="Model keys")
    use_cases: list[uuid.UUID] | None = None
    api_keys: list[uuid.UUID] | None = None
    users: list[uuid.UUID] | None = None
    mine: bool = strawberry.field(default=False, description="Only the caller's own usage (any caller may ask)")


@strawberry.input(name="UsageLimitInput", description="Null: no limit of that kind")
class UsageLimitInput:
    scope: UsageLimitScope
    subject: str = strawberry.field(description="API key id or prefix, user id or email, use case id or key")
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None
    budget_daily: float | None = strawberry.field(default=None, description="Dollars per UTC day")
    budget_monthly: float | None = strawberry.field(default=None, description="Dollars per UTC calendar month")


def _query(unit: DateBucketUnit, timerange: TimeRange | None, timezone: str | None = None) -> service.UsageQuery:
    check_timezone(timezone)
    since, until = timerange.bounds if timerange else (None, None)
    return service.UsageQuery(since=since, until=until, unit=unit.value)


@strawberry.type(name="UsageAggregateItem")
class UsageAggregateItem:
    bucket_ts: int | None = strawberry.field(description="Epoch seconds of the bucket's start (null: no bucketing)")
    prompt_tokens: float
    completion_tokens: float
    total_tokens: float
    interactions: float


@strawberry.type(name="UsageStats")
class UsageStats(UsageAggregateItem):
    cost: float = strawberry.field(description="Dollars")
    errors: float


@strawberry.type(name="UsageReportRow")
class UsageReportRow(UsageStats):
    model: str | None = strawberry.field(description="The model's key (grouped by MODEL)")
    use_case_id: uuid.UUID | None
    api_key_id: uuid.UUID | None
    user_id: uuid.UUID | None
    requests: float
    latency_p50_ms: float | None = strawberry.field(
        description="Median latency (ms), from the roll-ups' latency histogram"
    )
    latency_p95_ms: float | None
    latency_mean_ms: float | None


@strawberry.type(name="UseCaseItem")
class UseCaseItem:
    id: uuid.UUID
    key: str
    name: str
    description: str | None


@strawberry.type(name="UsageAggregatePerUseCaseItem")
class UsageAggregatePerUseCaseItem(UsageAggregateItem):
    use_case: UseCaseItem
    model_service: ModelServiceType | None = strawberry.field(
        description="The model's attachment to the use case (null once detached)"
    )


@strawberry.type(name="UsageStatsByModel")
class UsageStatsByModel(UsageStats):
    model: ModelType | None = strawberry.field(description="Null when the model has left the registry")
    model_key: str
    timeseries: list[UsageAggregateItem]


@strawberry.type(name="GlobalUsage")
class GlobalUsageType:
    total: UsageStats
    adaptive_models: UsageStats = strawberry.field(description="Models served by this platform (local ones)")
    external_models: UsageStats
    by_model: list[UsageStatsByModel]


class _Aggregate(TypedDict):
    bucket_ts: int | None
    prompt_tokens: float
    completion_tokens: float
    total_tokens: float
    interactions: float


class _Stats(_Aggregate):
    cost: float
    errors: float


def _aggregate(row: service.UsageRow) -> _Aggregate:
    """The fields every usage item shares, from one group's sums."""
    prompt, completion = row.value("prompt_tokens"), row.value("completion_tokens")
    return {
        "bucket_ts": row.bucket,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "interactions": row.value("requests"),
    }


def _stats(row: service.UsageRow) -> _Stats:
    return {**_aggregate(row), "cost": row.value("cost"), "errors": row.value("errors")}


def to_gql_aggregate(row: service.UsageRow) -> UsageAggregateItem:
    return UsageAggregateItem(**_aggregate(row))


def to_gql_stats(row: service.UsageRow) -> UsageStats:
    return UsageStats(**_stats(row))


def to_gql_report_row(row: service.UsageRow) -> UsageReportRow:
    return UsageReportRow(
        **_stats(row),
        model=row.model_key,
        use_case_id=row.use_case_id,
        api_key_id=row.api_key_id,
        user_id=row.user_id,
        requests=row.value("requests"),
        latency_p50_ms=row.quantile(0.5),
        latency_p95_ms=row.quantile(0.95),
        latency_mean_ms=row.latency_mean_ms,
    )


def to_gql_per_use_case(item: service.PerUseCase) -> UsageAggregatePerUseCaseItem:
    u = item.use_case
    return UsageAggregatePerUseCaseItem(
        **_aggregate(item.row),
        use_case=UseCaseItem(id=u.id, key=u.key, name=u.name, description=getattr(u, "description", None)),
        model_service=to_gql_model_service(ModelServiceRecord.of(item.service)) if item.service is not None else None,
    )


def to_gql_by_model(item: service.ByModel) -> UsageStatsByModel:
    return UsageStatsByModel(
        **_stats(item.total),
        model=to_gql_model(ModelRecord.of(item.model)) if item.model is not None else None,
        model_key=item.model_key,
        timeseries=[to_gql_aggregate(r) for r in item.series],
    )


def to_gql_global_usage(usage: service.GlobalUsage) -> GlobalUsageType:
    return GlobalUsageType(
        total=to_gql_stats(usage.total),
        adaptive_models=to_gql_stats(usage.adaptive),
        external_models=to_gql_stats(usage.external),
        by_model=[to_gql_by_model(m) for m in usage.by_model],
    )


@strawberry.type(name="UsageLimit")
class UsageLimitType:
    scope: UsageLimitScope
    subject_id: uuid.UUID
    requests_per_minute: int | None
    tokens_per_minute: int | None
    max_concurrent: int | None
    budget_daily: float | None
    budget_monthly: float | None

    @staticmethod
    def of(row: service.UsageLimit) -> UsageLimitType:  # the stored row list_limits returns
        return UsageLimitType(
            scope=UsageLimitScope(row.scope),
            subject_id=row.subject_id,
            **{name: getattr(row, name) for name in service.LIMIT_FIELDS},
        )


@strawberry.type(name="OwnUsageLimit", description="A limit on the caller's key or user, with the spend against it")
class OwnUsageLimit:
    limit: UsageLimitType
    spent_today: float
    spent_this_month: float


@strawberry.type
class UsageQuery:
    @strawberry.field(extensions=[authenticated()], description="One model's usage per time bucket")
    async def model_usage(self, info: Info[Context, None], filter: UsageFilterInput) -> list[UsageAggregateItem]:
        ctx = info.context
        rows = await service.model_usage(
            ctx.session, ctx.principal, filter.model_id, _query(filter.unit, filter.timerange, filter.timezone)
        )
        return [to_gql_aggregate(r) for r in rows]

    @strawberry.field(extensions=[authenticated()], description="One model's usage per use case")
    async def model_usage_by_use_case(
        self, info: Info[Context, None], filter: UsagePerUseCaseFilterInput
    ) -> list[UsageAggregatePerUseCaseItem]:
        ctx = info.context
        items = await service.model_usage_by_use_case(
            ctx.session, ctx.principal, filter.model_id, _query(DateBucketUnit.NO_GROUP_BY_DATE, filter.timerange)
        )
        return [to_gql_per_use_case(i) for i in items]

    @strawberry.field(extensions=[authenticated()], description="Usage of every model the caller can see")
    async def global_usage(self, info: Info[Context, None], filter: GlobalUsageFilterInput) -> GlobalUsageType:
        ctx = info.context
        usage = await service.global_usage(
            ctx.session, ctx.principal, _query(filter.interval, filter.timerange, filter.timezone)
        )
        return to_gql_global_usage(usage)

    @strawberry.field(
        extensions=[authenticated()],
        description="Requests, tokens, errors, cost and latency p50/p95 per bucket and group",
    )
    async def usage_report(self, info: Info[Context, None], input: UsageReportInput) -> list[UsageReportRow]:
        ctx = info.context
        query = _query(input.unit, input.timerange)
        query.group_by = tuple(d.value for d in input.group_by)
        query.model_keys, query.use_case_ids = input.models, input.use_cases
        query.api_key_ids, query.user_ids = input.api_keys, input.users
        rows = await service.report(ctx.session, ctx.principal, query, mine=input.mine)
        return [to_gql_report_row(r) for r in rows]

    @strawberry.field(extensions=[authenticated()], description="Limits set (needs user:manage)")
    async def usage_limits(
        self, info: Info[Context, None], scope: UsageLimitScope | None = None
    ) -> list[UsageLimitType]:
        ctx = info.context
        rows = await service.list_limits(ctx.session, ctx.principal, scope.value if scope else None)
        return [UsageLimitType.of(r) for r in rows]

    @strawberry.field(extensions=[authenticated()], description="The limits on the caller's API key and user")
    async def my_limits(self, info: Info[Context, None]) -> list[OwnUsageLimit]:
        ctx = info.context
        return [
            OwnUsageLimit(
                limit=UsageLimitType.of(o.row), spent_today=o.spent_today, spent_this_month=o.spent_this_month
            )
            for o in await service.own_limits(ctx.session, ctx.principal)
        ]


@strawberry.type
class UsageMutation:
    @strawberry.mutation(
        extensions=[authenticated()],
        description="Set (replace) the limits of an API key, user or use case (needs user:manage)",
    )
    async def set_usage_limits(self, info: Info[Context, None], input: UsageLimitInput) -> UsageLimitType:
        ctx = info.context
        values = {name: getattr(input, name) for name in service.LIMIT_FIELDS}
        row = await service.set_limits(ctx.session, ctx.principal, input.scope.value, input.subject, values)
        return UsageLimitType.of(row)

    @strawberry.mutation(extensions=[authenticated()], description="Remove every limit of a subject")
    async def remove_usage_limits(self, info: Info[Context, None], scope: UsageLimitScope, subject: str) -> bool:
        ctx = info.context
        return await service.remove_limits(ctx.session, ctx.principal, scope.value, subject)
