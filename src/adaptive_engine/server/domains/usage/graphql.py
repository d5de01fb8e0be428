"""GraphQL: usage (the official client's ``modelUsage``, ``modelUsageByUseCase``, ``globalUsage``, and the
console's ``usageReport``), limits (``setUsageLimits``, ``removeUsageLimits``, ``usageLimits``, ``myLimits``)."""

from __future__ import annotations

import enum
import uuid

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
    model_id: IdOrKey  # type: ignore[valid-type]
    unit: DateBucketUnit
    timerange: TimeRange | None = None
    timezone: str | None = None


@strawberry.input(name="UsagePerUseCaseFilterInput")
class UsagePerUseCaseFilterInput:
    model_id: IdOrKey  # type: ignore[valid-type]
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
    row: strawberry.Private[service.UsageRow]

    @strawberry.field(description="Epoch seconds of the bucket's start (null: no bucketing)")
    def bucket_ts(self) -> int | None:
        return self.row.bucket

    @strawberry.field
    def prompt_tokens(self) -> float:
        return self.row.value("prompt_tokens")

    @strawberry.field
    def completion_tokens(self) -> float:
        return self.row.value("completion_tokens")

    @strawberry.field
    def total_tokens(self) -> float:
        return self.row.value("prompt_tokens") + self.row.value("completion_tokens")

    @strawberry.field
    def interactions(self) -> float:
        return self.row.value("requests")


@strawberry.type(name="UsageStats")
class UsageStats(UsageAggregateItem):
    @strawberry.field(description="Dollars")
    def cost(self) -> float:
        return self.row.value("cost")

    @strawberry.field
    def errors(self) -> float:
        return self.row.value("errors")


@strawberry.type(name="UsageReportRow")
class UsageReportRow(UsageStats):
    @strawberry.field(description="The model's key (grouped by MODEL)")
    def model(self) -> str | None:
        return self.row.model_key

    @strawberry.field
    def use_case_id(self) -> uuid.UUID | None:
        return self.row.use_case_id

    @strawberry.field
    def api_key_id(self) -> uuid.UUID | None:
        return self.row.api_key_id

    @strawberry.field
    def user_id(self) -> uuid.UUID | None:
        return self.row.user_id

    @strawberry.field
    def requests(self) -> float:
        return self.row.value("requests")

    @strawberry.field(description="Median latency (ms), from the roll-ups' latency histogram")
    def latency_p50_ms(self) -> float | None:
        return self.row.quantile(0.5)

    @strawberry.field
    def latency_p95_ms(self) -> float | None:
        return self.row.quantile(0.95)

    @strawberry.field
    def latency_mean_ms(self) -> float | None:
        return self.row.latency_mean_ms


@strawberry.type(name="UseCaseItem")
class UseCaseItem:
    id: uuid.UUID
    key: str
    name: str
    description: str | None


@strawberry.type(name="UsageAggregatePerUseCaseItem")
class UsageAggregatePerUseCaseItem(UsageAggregateItem):
    item: strawberry.Private[service.PerUseCase]

    @strawberry.field
    def use_case(self) -> UseCaseItem:
        u = self.item.use_case
        return UseCaseItem(id=u.id, key=u.key, name=u.name, description=getattr(u, "description", None))

    @strawberry.field(description="The model's attachment to the use case (null once detached)")
    def model_service(self) -> ModelServiceType | None:
        return to_gql_model_service(ModelServiceRecord.of(self.item.service)) if self.item.service is not None else None


@strawberry.type(name="UsageStatsByModel")
class UsageStatsByModel(UsageStats):
    item: strawberry.Private[service.ByModel]

    @strawberry.field(description="Null when the model has left the registry")
    def model(self) -> ModelType | None:
        return to_gql_model(ModelRecord.of(self.item.model)) if self.item.model is not None else None

    @strawberry.field
    def model_key(self) -> str:
        return self.item.model_key

    @strawberry.field
    def timeseries(self) -> list[UsageAggregateItem]:
        return [UsageAggregateItem(row=r) for r in self.item.series]


@strawberry.type(name="GlobalUsage")
class GlobalUsageType:
    usage: strawberry.Private[service.GlobalUsage]

    @strawberry.field
    def total(self) -> UsageStats:
        return UsageStats(row=self.usage.total)

    @strawberry.field(description="Models served by this platform (local ones)")
    def adaptive_models(self) -> UsageStats:
        return UsageStats(row=self.usage.adaptive)

    @strawberry.field
    def external_models(self) -> UsageStats:
        return UsageStats(row=self.usage.external)

    @strawberry.field
    def by_model(self) -> list[UsageStatsByModel]:
        return [UsageStatsByModel(row=m.total, item=m) for m in self.usage.by_model]


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
    def of(row: object) -> UsageLimitType:
        return UsageLimitType(
            scope=UsageLimitScope(row.scope),
            subject_id=row.subject_id,  # type: ignore[attr-defined]
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
        return [UsageAggregateItem(row=r) for r in rows]

    @strawberry.field(extensions=[authenticated()], description="One model's usage per use case")
    async def model_usage_by_use_case(
        self, info: Info[Context, None], filter: UsagePerUseCaseFilterInput
    ) -> list[UsageAggregatePerUseCaseItem]:
        ctx = info.context
        items = await service.model_usage_by_use_case(
            ctx.session, ctx.principal, filter.model_id, _query(DateBucketUnit.NO_GROUP_BY_DATE, filter.timerange)
        )
        return [UsageAggregatePerUseCaseItem(row=i.row, item=i) for i in items]

    @strawberry.field(extensions=[authenticated()], description="Usage of every model the caller can see")
    async def global_usage(self, info: Info[Context, None], filter: GlobalUsageFilterInput) -> GlobalUsageType:
        ctx = info.context
        usage = await service.global_usage(
            ctx.session, ctx.principal, _query(filter.interval, filter.timerange, filter.timezone)
        )
        return GlobalUsageType(usage=usage)

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
        return [UsageReportRow(row=r) for r in rows]

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
