"""GraphQL of feedback: keys (createMetric, metrics, metric, linkMetric, unlinkMetric) and statistics."""

from __future__ import annotations

import uuid

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from adaptive_engine.server.auth.guard import authenticated, requires
from adaptive_engine.server.domains.feedback import corrections, statistics
from adaptive_engine.server.domains.feedback.types import (
    MetricKind,
    MetricScoringType,
    MetricType,
    MetricWithContextType,
    to_gql_metric,
    to_gql_metric_with_context,
)
from adaptive_engine.server.domains.feedback_keys import service as keys
from adaptive_engine.server.domains.feedback_keys.records import MetricRecord
from adaptive_engine.server.domains.interactions.graphql import DirectFeedbackType, to_gql_direct_feedback
from adaptive_engine.server.domains.interactions.service import resolve_ab_campaign
from adaptive_engine.server.domains.use_cases.service import get_use_case
from adaptive_engine.server.graphql.common import TimeRange
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.scalars import IdOrKey


@strawberry.input(name="MetricCreate")
class MetricCreate:
    name: str
    kind: MetricKind
    key: str | None = None
    scoring_type: MetricScoringType = MetricScoringType.HIGHER_IS_BETTER
    description: str | None = None
    unit: str | None = None


@strawberry.input(name="MetricLink")
class MetricLink:
    use_case: IdOrKey
    metric: IdOrKey


@strawberry.input(name="MetricUnlink")
class MetricUnlink:
    use_case: IdOrKey
    metric: IdOrKey


@strawberry.input(name="FeedbackStatisticsFilter")
class FeedbackStatisticsFilter:
    use_case: IdOrKey
    metric: IdOrKey | None = None
    ab_campaign: IdOrKey | None = None
    models: list[str] | None = None
    timerange: TimeRange | None = None
    by_model: bool = True


@strawberry.input(name="FeedbackUpdateInput")
class FeedbackUpdateInput:
    value: JSON | None = None
    details: str | None = None


@strawberry.input(name="FeedbackAddInput")
class FeedbackAddInput:
    value: JSON
    details: str | None = None
    reason: str | None = None
    user_id: uuid.UUID | None = None


@strawberry.type(name="MetricStatistics", description="Sufficient statistics of a feedback key's values")
class MetricStatisticsType:
    metric: MetricType
    model: str | None
    count: int
    sum: float
    sum_of_squares: float
    mean: float | None
    variance: float | None = strawberry.field(description="Sample variance (n - 1); null under two values")
    min: float | None
    max: float | None


def to_gql_metric_statistics(stats: statistics.MetricStats, metric: MetricRecord) -> MetricStatisticsType:
    return MetricStatisticsType(
        metric=to_gql_metric(metric),
        model=stats.model,
        count=stats.count,
        sum=stats.sum,
        sum_of_squares=stats.sum_of_squares,
        mean=stats.mean,
        variance=stats.variance,
        min=stats.min,
        max=stats.max,
    )


@strawberry.type(name="PreferenceStatistics", description="Wins, losses and ties of a model pair (model_a <= model_b)")
class PreferenceStatisticsType:
    metric: MetricType
    model_a: str | None
    model_b: str | None
    wins_a: int
    wins_b: int
    ties_good: int
    ties_bad: int
    ties: int
    total: int


def to_gql_preference_statistics(stats: statistics.PreferenceStats, metric: MetricRecord) -> PreferenceStatisticsType:
    return PreferenceStatisticsType(
        metric=to_gql_metric(metric),
        model_a=stats.model_a,
        model_b=stats.model_b,
        wins_a=stats.wins_a,
        wins_b=stats.wins_b,
        ties_good=stats.ties_good,
        ties_bad=stats.ties_bad,
        ties=stats.ties,
        total=stats.total,
    )


async def _stats_filter(info: Info[Context, None], flt: FeedbackStatisticsFilter) -> statistics.StatsFilter:
    ctx = info.context
    use_case = await get_use_case(ctx.session, ctx.principal, flt.use_case, "use_case:read")
    metric = await keys.find_key(ctx.session, flt.metric) if flt.metric else None
    campaign = await resolve_ab_campaign(ctx.session, flt.ab_campaign, "abCampaign") if flt.ab_campaign else None
    since, until = flt.timerange.bounds if flt.timerange else (None, None)
    return statistics.StatsFilter(
        use_case_id=use_case.id,
        metric_id=metric.id if metric else None,
        ab_campaign_id=campaign,
        models=tuple(flt.models) if flt.models is not None else None,
        since=since,
        until=until,
    )


@strawberry.type
class FeedbackQuery:
    @strawberry.field(description="Every feedback key", extensions=[authenticated()])
    async def metrics(self, info: Info[Context, None]) -> list[MetricType]:
        return [to_gql_metric(m) for m in await keys.list_keys(info.context.session)]

    @strawberry.field(description="A feedback key by id or key", extensions=[authenticated()])
    async def metric(self, info: Info[Context, None], id_or_key: IdOrKey) -> MetricType | None:
        return to_gql_metric(await keys.find_key(info.context.session, id_or_key))

    @strawberry.field(
        description="Count, mean and variance of feedback values per feedback key (and model)",
        extensions=[requires("use_case:read", use_case="filter.use_case")],
    )
    async def feedback_statistics(
        self, info: Info[Context, None], filter: FeedbackStatisticsFilter
    ) -> list[MetricStatisticsType]:  # noqa: A002
        flt = await _stats_filter(info, filter)
        rows = await statistics.metric_statistics(info.context.session, flt, by_model=filter.by_model)
        metrics = await keys.keys_by_id(info.context.session, (r.metric_id for r in rows))
        return [to_gql_metric_statistics(r, metrics[r.metric_id]) for r in rows]

    @strawberry.field(
        description="Wins, losses and ties per model pair for preference feedback",
        extensions=[requires("use_case:read", use_case="filter.use_case")],
    )
    async def preference_statistics(
        self, info: Info[Context, None], filter: FeedbackStatisticsFilter
    ) -> list[PreferenceStatisticsType]:  # noqa: A002
        flt = await _stats_filter(info, filter)
        rows = await statistics.preference_statistics(info.context.session, flt)
        metrics = await keys.keys_by_id(info.context.session, (r.metric_id for r in rows))
        return [to_gql_preference_statistics(r, metrics[r.metric_id]) for r in rows]


@strawberry.type
class FeedbackMutation:
    @strawberry.mutation(description="Register a feedback key", extensions=[requires("feedback:write")])
    async def create_metric(self, info: Info[Context, None], input: MetricCreate) -> MetricType:  # noqa: A002
        ctx = info.context
        metric = await keys.register_key(
            ctx.session,
            ctx.principal,
            key=input.key,
            name=input.name,
            kind=input.kind.value,
            scoring_type=input.scoring_type.value,
            description=input.description,
        )
        return to_gql_metric(metric, flags=(False, False))

    @strawberry.mutation(
        description="Link a feedback key to a use case",
        extensions=[requires("use_case:write", use_case="input.use_case")],
    )
    async def link_metric(self, info: Info[Context, None], input: MetricLink) -> MetricWithContextType:  # noqa: A002
        ctx = info.context
        return to_gql_metric_with_context(
            await keys.link(ctx.session, ctx.principal, use_case=input.use_case, metric=input.metric)
        )

    @strawberry.mutation(
        description="Unlink a feedback key from a use case; answers the key",
        extensions=[requires("use_case:write", use_case="input.use_case")],
    )
    async def unlink_metric(self, info: Info[Context, None], input: MetricUnlink) -> str:  # noqa: A002
        ctx = info.context
        metric = await keys.unlink(ctx.session, ctx.principal, use_case=input.use_case, metric=input.metric)
        return metric.key

    @strawberry.mutation(
        description="Correct a feedback value (or its details)",
        extensions=[authenticated()],  # the feedback's use case is checked for feedback:write
    )
    async def update_feedback(
        self, info: Info[Context, None], id: uuid.UUID, input: FeedbackUpdateInput
    ) -> DirectFeedbackType:  # noqa: A002
        ctx = info.context
        return to_gql_direct_feedback(await corrections.update_feedback(ctx.session, ctx.principal, id, input))

    @strawberry.mutation(
        description="Add a metric value to a completion by hand",
        extensions=[authenticated()],  # the completion's use case is checked for feedback:write
    )
    async def add_direct_feedback(
        self,
        info: Info[Context, None],
        completion_id: uuid.UUID,
        metric_id: IdOrKey,
        input: FeedbackAddInput,  # noqa: A002
    ) -> DirectFeedbackType:
        ctx = info.context
        view = await corrections.add_direct_feedback(
            ctx.session,
            ctx.principal,
            ctx.platform.ingest,
            completion_id=completion_id,
            metric=metric_id,
            value=input.value,
            reason=input.reason,
            details=input.details,
            user=str(input.user_id) if input.user_id else None,
        )
        return to_gql_direct_feedback(view)
