"""GraphQL of A/B campaigns, with the official client's names (Abcampaign, AbReport, AbcampaignCreate,
AbCampaignFilter, AbcampaignStatus, FeedbackType; ``cancelAbCampaign(input: IdOrKey!)``)."""

from __future__ import annotations

import enum
import uuid

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import requires, use_case_of
from adaptive_engine.server.domains.ab_tests import history, service
from adaptive_engine.server.domains.ab_tests.evaluator import stats_config
from adaptive_engine.server.domains.ab_tests.records import CampaignRecord, EvaluationRecord
from adaptive_engine.server.domains.ab_tests.repository import find_campaign
from adaptive_engine.server.domains.ab_tests.statistics import (
    CampaignPhase,
    StatsConfig,
)
from adaptive_engine.server.domains.feedback.types import MetricType, to_gql_metric
from adaptive_engine.server.domains.feedback_keys.service import keys_by_id
from adaptive_engine.server.domains.models.service import models_by_id
from adaptive_engine.server.domains.models.types import ModelType, to_gql_model
from adaptive_engine.server.domains.use_cases.graphql import UseCaseType, to_gql_use_case
from adaptive_engine.server.domains.use_cases.service import use_cases_by_id
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.loaders import Batch, lookup
from adaptive_engine.server.graphql.scalars import IdOrKey
from adaptive_engine.server.timestamps import epoch


@strawberry.enum(name="AbcampaignStatus")
class AbcampaignStatus(enum.Enum):
    WARMUP = "WARMUP"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    CANCELLED = "CANCELLED"


@strawberry.enum(name="FeedbackType")
class FeedbackType(enum.Enum):
    DIRECT = "DIRECT"
    COMPARISON = "COMPARISON"


@strawberry.input(name="AbcampaignCreate")
class AbcampaignCreate:
    key: str
    metric: str
    use_case: str
    model_services: list[str]
    auto_deploy: bool
    traffic_split: float
    name: str | None = None
    feedback_type: FeedbackType = FeedbackType.DIRECT


@strawberry.input(name="AbCampaignFilter")
class AbCampaignFilter:
    active: bool | None = None
    status: AbcampaignStatus | None = None
    use_case: str | None = None


@strawberry.type(name="AbVariantInterval", description="Anytime-valid confidence interval around the estimate")
class AbVariantInterval:
    start: float
    middle: float
    end: float


@strawberry.type(name="AbVariantComparison", description="Preference duels of a variant against another")
class AbVariantComparison:
    feedbacks: int
    wins: int
    losses: int
    ties_good: int
    ties_bad: int
    variant: ModelType


@strawberry.type(name="AbVariantReport")
class AbVariantReport:
    variant: ModelType
    interval: AbVariantInterval | None
    feedbacks: int = strawberry.field(description="Metric values, or duels (ties included), of this variant")
    comparisons: list[AbVariantComparison] | None
    mean: float | None = strawberry.field(description="Mean value (metric) or win rate over decisive duels")
    assignments: int = strawberry.field(description="Sessions (or requests) routed to this variant")


@strawberry.type(name="AbPairTest", description="Always-valid test between two variants (Bonferroni-adjusted)")
class AbPairTest:
    variant_a: ModelType
    variant_b: ModelType
    estimate: float | None = strawberry.field(description="mean(b) - mean(a), or the win rate of a against b")
    interval_start: float | None
    interval_end: float | None
    p_value: float


@strawberry.type(name="AbVariantEstimate", description="A variant's estimate at one past evaluation")
class AbVariantEstimate:
    variant: ModelType | None = strawberry.field(description="Null once the model was deleted")
    feedbacks: int
    mean: float | None
    interval: AbVariantInterval | None


@strawberry.type(name="AbEvaluation", description="The estimates of one past evaluation of an A/B test")
class AbEvaluationType:
    at: int = strawberry.field(description="When it ran (epoch seconds)")
    feedbacks: int
    p_value: float = strawberry.field(description="Always-valid p-value (running minimum) after it")
    warming_up: bool
    decision: str = strawberry.field(description="'continue' or 'winner'")
    winner: ModelType | None
    variants: list[AbVariantEstimate]
    pairs: list[AbPairTest]
    sample_ratio_p_value: float | None


def to_gql_evaluation(campaign: CampaignRecord, row: EvaluationRecord) -> AbEvaluationType:
    models = {str(model.id): model for model in campaign.arms}

    def model(model_id: object) -> ModelType | None:
        found = models.get(str(model_id))
        return to_gql_model(found) if found is not None else None

    variants = []
    for arm in row.arms:
        interval = None
        if arm["mean"] is not None and arm["low"] is not None and arm["high"] is not None:
            interval = AbVariantInterval(start=arm["low"], middle=arm["mean"], end=arm["high"])
        variants.append(
            AbVariantEstimate(
                variant=model(arm["model_id"]), feedbacks=arm["count"], mean=arm["mean"], interval=interval
            )
        )
    pairs = [
        AbPairTest(
            variant_a=a,
            variant_b=b,
            estimate=p["estimate"],
            interval_start=p["low"],
            interval_end=p["high"],
            p_value=p["p_value"],
        )
        for p in row.pairs
        if (a := model(p["a"])) is not None and (b := model(p["b"])) is not None
    ]
    return AbEvaluationType(
        at=epoch(row.created_at) or 0,
        feedbacks=row.feedbacks,
        p_value=row.p_value,
        warming_up=row.phase == "WARMUP",
        decision=row.decision,
        winner=model(row.winner_model_id) if row.winner_model_id else None,
        variants=variants,
        pairs=pairs,
        sample_ratio_p_value=row.sample_ratio_p_value,
    )


@strawberry.type(name="AbReport")
class AbReport:
    p_value: float | None = strawberry.field(description="Always-valid p-value (running minimum)")
    variants: list[AbVariantReport]
    decision: str = strawberry.field(description="'continue' or 'winner'")
    winner: ModelType | None
    warming_up: bool
    sample_ratio_mismatch: bool
    sample_ratio_p_value: float | None
    pairs: list[AbPairTest]
    notes: list[str]
    alpha: float = strawberry.field(description="A pair is decided once its p-value is at or under this")
    min_feedbacks_per_variant: int = strawberry.field(description="Feedback each variant needs before any decision")


# The reports of all the campaigns of a list at once (and once per campaign for its fields that need it).
REPORTS: Batch[uuid.UUID, service.CampaignReport] = Batch(
    lambda ctx, ids: service.reports_by_id(ctx.session, ids, stats_config(ctx.platform.settings))
)
METRICS_BY_ID = lookup(keys_by_id)
USE_CASES_BY_ID = lookup(use_cases_by_id)
MODELS_BY_ID = lookup(models_by_id)


@strawberry.type(name="Abcampaign")
class AbcampaignType:
    id: uuid.UUID
    key: str
    name: str
    status: AbcampaignStatus
    begin_date: int
    end_date: int | None
    feedback_type: FeedbackType
    traffic_split: float
    auto_deploy: bool
    record: strawberry.Private[CampaignRecord]

    async def _get_report(self, info: Info[Context, None]) -> service.CampaignReport:
        return await info.context.loaders.load(REPORTS, self.id)

    @strawberry.field
    async def metric(self, info: Info[Context, None]) -> MetricType | None:
        found = await info.context.loaders.load(METRICS_BY_ID, self.record.metric_id)
        return to_gql_metric(found) if found is not None else None

    @strawberry.field
    async def use_case(self, info: Info[Context, None]) -> UseCaseType | None:
        found = await info.context.loaders.load(USE_CASES_BY_ID, self.record.use_case_id)
        return to_gql_use_case(found) if found is not None else None

    @strawberry.field
    def models(self) -> list[ModelType]:
        return [to_gql_model(model) for model in self.record.arms]

    @strawberry.field
    async def winner(self, info: Info[Context, None]) -> ModelType | None:
        if self.record.winner_model_id is None:
            return None
        found = await info.context.loaders.load(MODELS_BY_ID, self.record.winner_model_id)
        return to_gql_model(found) if found is not None else None

    @strawberry.field(description="Feedback values (metric) or duels (preference) collected so far")
    async def feedbacks(self, info: Info[Context, None]) -> int:
        return (await self._get_report(info)).feedbacks

    @strawberry.field(description="Every variant has passed the warm-up minimum")
    async def has_enough_feedbacks(self, info: Info[Context, None]) -> bool:
        return (await self._get_report(info)).result.phase is CampaignPhase.IN_PROGRESS

    @strawberry.field
    async def report(self, info: Info[Context, None]) -> AbReport:
        report = await self._get_report(info)
        return to_gql_report(self.record, report, stats_config(info.context.platform.settings))

    @strawberry.field(
        description="Past evaluations, oldest first: each one that saw new feedback or changed the "
        f"phase or decision (past {history.MAX_KEPT}, thinned evenly over the test's life)"
    )
    async def history(self, info: Info[Context, None]) -> list[AbEvaluationType]:
        return [to_gql_evaluation(self.record, e) for e in await history.history(info.context.session, self.id)]


def to_gql_campaign(campaign: CampaignRecord) -> AbcampaignType:
    return AbcampaignType(
        id=campaign.id,
        key=campaign.key,
        name=campaign.name,
        status=AbcampaignStatus(campaign.status),
        begin_date=epoch(campaign.created_at) or 0,
        end_date=epoch(campaign.end_date),
        feedback_type=FeedbackType(campaign.feedback_type),
        traffic_split=campaign.traffic_split,
        auto_deploy=campaign.auto_deploy,
        record=campaign,
    )


def to_gql_report(campaign: CampaignRecord, report: service.CampaignReport, config: StatsConfig) -> AbReport:
    models = {model.id: model for model in campaign.arms}
    result = report.result
    variants = []
    for model_id in report.arm_ids:
        arm = result.arm(str(model_id))
        interval = None
        if arm.mean is not None and arm.ci_low is not None and arm.ci_high is not None:
            interval = AbVariantInterval(start=arm.ci_low, middle=arm.mean, end=arm.ci_high)
        comparisons = None
        if campaign.feedback_type == "COMPARISON":
            comparisons = [
                AbVariantComparison(
                    feedbacks=d.total,
                    wins=d.wins,
                    losses=d.losses,
                    ties_good=d.ties_good,
                    ties_bad=d.ties_bad,
                    variant=to_gql_model(models[other]),
                )
                for other in report.arm_ids
                if other != model_id and (d := report.data.duels.get((model_id, other))) is not None
            ]
        variants.append(
            AbVariantReport(
                variant=to_gql_model(models[model_id]),
                interval=interval,
                feedbacks=arm.count,
                comparisons=comparisons,
                mean=arm.mean,
                assignments=report.data.assignments.get(model_id, 0),
            )
        )
    winner_id = campaign.winner_model_id or (uuid.UUID(result.winner) if result.winner else None)
    pairs = [
        AbPairTest(
            variant_a=to_gql_model(models[uuid.UUID(p.arm_a)]),
            variant_b=to_gql_model(models[uuid.UUID(p.arm_b)]),
            estimate=p.estimate,
            interval_start=p.ci_low,
            interval_end=p.ci_high,
            p_value=p.p_value,
        )
        for p in result.pairs
    ]
    return AbReport(
        p_value=report.p_value,
        variants=variants,
        decision="winner" if winner_id is not None else "continue",
        winner=to_gql_model(models[winner_id]) if winner_id in models else None,
        warming_up=result.phase is CampaignPhase.WARMUP,
        sample_ratio_mismatch=result.srm.flagged,
        sample_ratio_p_value=result.srm.p_value,
        pairs=pairs,
        notes=list(result.notes),
        alpha=config.alpha,
        min_feedbacks_per_variant=config.min_observations_per_arm,
    )


@strawberry.type
class AbTestQuery:
    @strawberry.field(
        extensions=[requires("use_case:read", use_case=use_case_of(find_campaign, "A/B test", "id_or_key"))]
    )
    async def ab_campaign(self, info: Info[Context, None], id_or_key: IdOrKey) -> AbcampaignType | None:
        ctx = info.context
        return to_gql_campaign(await service.get_campaign(ctx.session, ctx.principal, id_or_key))

    @strawberry.field(extensions=[requires("use_case:read", use_case="filter.use_case", absent="filtered")])
    async def ab_campaigns(
        self, info: Info[Context, None], filter: AbCampaignFilter | None = None
    ) -> list[AbcampaignType]:
        ctx = info.context
        f = filter or AbCampaignFilter()
        campaigns = await service.list_campaigns(
            ctx.session,
            ctx.principal,
            active=f.active,
            status=f.status.value if f.status is not None else None,
            use_case=f.use_case,
        )
        return [to_gql_campaign(c) for c in campaigns]


@strawberry.type
class AbTestMutation:
    @strawberry.mutation(extensions=[requires("ab_test:write", use_case="input.use_case")])
    async def create_ab_campaign(self, info: Info[Context, None], input: AbcampaignCreate) -> AbcampaignType:
        ctx = info.context
        campaign = await service.create_campaign(
            ctx.session,
            ctx.principal,
            key=input.key,
            name=input.name,
            metric=input.metric,
            use_case=input.use_case,
            models=list(input.model_services),
            traffic_split=input.traffic_split,
            auto_deploy=input.auto_deploy,
            feedback_type=input.feedback_type.value,
            router=ctx.platform.ab_router,
        )
        return to_gql_campaign(campaign)

    @strawberry.mutation(
        description="Cancel an active A/B test; returns its key",
        extensions=[requires("ab_test:write", use_case=use_case_of(find_campaign, "A/B test", "input"))],
    )
    async def cancel_ab_campaign(self, info: Info[Context, None], input: IdOrKey) -> str:
        ctx = info.context
        campaign = await service.cancel_campaign(ctx.session, ctx.principal, input, ctx.platform.ab_router)
        return campaign.key
