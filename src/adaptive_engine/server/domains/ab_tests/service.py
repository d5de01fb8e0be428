"""A/B campaigns: create, read, cancel, evaluate, and promote the winner.

Services raise DomainErrors and never commit; the caller's unit of work does.
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.lookup import find_by_id_or_key, parse_uuid
from adaptive_engine.server.db.models.ab_tests import ACTIVE_STATUSES
from adaptive_engine.server.db.session import rowcount
from adaptive_engine.server.domains.ab_tests import history, repository
from adaptive_engine.server.domains.ab_tests.records import CampaignRecord
from adaptive_engine.server.domains.ab_tests.repository import CampaignData
from adaptive_engine.server.domains.ab_tests.routing import AbRouter
from adaptive_engine.server.domains.ab_tests.statistics import (
    CampaignPhase,
    CampaignResult,
    DuelCounts,
    MetricArm,
    StatsConfig,
    evaluate_metric,
    evaluate_preference,
)
from adaptive_engine.server.domains.models.service import set_default
from adaptive_engine.server.domains.use_cases.service import (
    get_use_case,
    list_use_cases,
    validate_key,
)
from adaptive_engine.server.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
)
from adaptive_engine.server.notify.events import emit
from adaptive_engine.server.timestamps import utcnow

log = logging.getLogger("adaptive_engine.ab_tests")

FEEDBACK_TYPES = ("DIRECT", "COMPARISON")
STATUSES = ("WARMUP", "IN_PROGRESS", "DONE", "CANCELLED")
EVENT_COMPLETED = "ab_campaign.completed"
EVENT_CANCELLED = "ab_campaign.cancelled"


# ----------------------------------------------------------------------------- create / read / cancel


async def create_campaign(
    session: AsyncSession,
    principal: Principal,
    *,
    key: str,
    name: str | None,
    metric: str,
    use_case: str,
    models: list[str],
    traffic_split: float,
    auto_deploy: bool,
    feedback_type: str = "DIRECT",
    router: AbRouter,
) -> CampaignRecord:
    """A new active campaign; ``router`` forgets what it knew of the use case's traffic."""
    use_case_row = await get_use_case(session, principal, use_case)
    await principal.require(session, "ab_test:write", use_case_row.id, f"use case '{use_case}'")
    validate_key(key, "A/B test key")
    if (await session.execute(select(orm.AbCampaign.id).where(orm.AbCampaign.key == key))).first():
        raise AlreadyExists(f"A/B test '{key}' already exists")
    if feedback_type not in FEEDBACK_TYPES:
        raise InvalidInput(f"feedback type must be DIRECT (metric) or COMPARISON (preference), not '{feedback_type}'")
    if not (isinstance(traffic_split, (int, float)) and math.isfinite(traffic_split) and 0.0 < traffic_split <= 1.0):
        raise InvalidInput(f"traffic_split must be in (0, 1], got {traffic_split}")
    metric_row = await find_by_id_or_key(session, orm.Metric, metric)
    if metric_row is None:
        raise NotFound(f"feedback key '{metric}' not found")
    linked = await session.get(orm.UseCaseMetric, (use_case_row.id, metric_row.id))
    if linked is None:
        raise InvalidInput(f"feedback key '{metric_row.key}' is not linked to use case '{use_case_row.key}'")
    arms = await _resolve_arms(session, use_case_row, models)
    current = await repository.active_campaign(session, use_case_row.id)
    if current is not None:
        raise Conflict(
            f"use case '{use_case_row.key}' already has an active A/B test '{current.key}' handling its default"
            " traffic; cancel it or wait for it to finish"
        )
    campaign = orm.AbCampaign(
        key=key,
        name=name or key,
        use_case_id=use_case_row.id,
        metric_id=metric_row.id,
        feedback_type=feedback_type,
        traffic_split=float(traffic_split),
        auto_deploy=bool(auto_deploy),
        status="WARMUP",
        active_use_case_id=use_case_row.id,
    )
    campaign.arms = [orm.AbCampaignArm(model=model, model_id=model.id, position=i) for i, model in enumerate(arms)]
    try:
        async with session.begin_nested():
            session.add(campaign)
            await session.flush()
    except IntegrityError as exc:  # a concurrent create won the race on the key or the use case
        raise Conflict(f"A/B test '{key}' conflicts with a campaign created at the same time; retry") from exc
    router.invalidate(campaign.use_case_id)
    return CampaignRecord.of(campaign)


async def _resolve_arms(session: AsyncSession, use_case: orm.UseCase, models: list[str]) -> list[orm.Model]:
    if not models or len(models) < 2:
        raise InvalidInput("an A/B test needs at least two models")
    services = (
        (await session.execute(select(orm.ModelService).where(orm.ModelService.use_case_id == use_case.id)))
        .scalars()
        .all()
    )
    by_model = {s.model_id: s for s in services}
    by_service = {s.id: s for s in services}
    arms: list[orm.Model] = []
    for ref in models:
        as_uuid = parse_uuid(ref)
        service = by_service.get(as_uuid) if as_uuid else None
        model = service.model if service is not None else await find_by_id_or_key(session, orm.Model, ref)
        if model is None:
            raise NotFound(f"model '{ref}' not found")
        if model.id not in by_model:
            raise InvalidInput(f"model '{model.key}' is not attached to use case '{use_case.key}'")
        if model.kind != "chat":
            raise InvalidInput(f"model '{model.key}' is an {model.kind} model; A/B tests compare chat models")
        if any(a.id == model.id for a in arms):
            raise InvalidInput(f"model '{model.key}' is listed twice")
        arms.append(model)
    return arms


async def _readable_campaign(session: AsyncSession, principal: Principal, id_or_key: str) -> orm.AbCampaign:
    campaign = await repository.find_campaign(session, id_or_key)
    if campaign is None or not await principal.can(session, "use_case:read", campaign.use_case_id):
        raise NotFound(f"A/B test '{id_or_key}' not found")
    return campaign


async def get_campaign(session: AsyncSession, principal: Principal, id_or_key: str) -> CampaignRecord:
    return CampaignRecord.of(await _readable_campaign(session, principal, id_or_key))


async def list_campaigns(
    session: AsyncSession,
    principal: Principal,
    *,
    active: bool | None = None,
    status: str | None = None,
    use_case: str | None = None,
) -> list[CampaignRecord]:
    if status is not None and status not in STATUSES:
        raise InvalidInput(f"status must be one of {', '.join(STATUSES)}, not '{status}'")
    if use_case:
        use_case_ids: list[uuid.UUID] | None = [(await get_use_case(session, principal, use_case)).id]
    elif principal.is_admin:
        use_case_ids = None
    else:
        use_case_ids = [u.id for u in await list_use_cases(session, principal)]
    found = await repository.list_campaigns(session, use_case_ids=use_case_ids, active=active, status=status)
    return [CampaignRecord.of(c) for c in found]


async def cancel_campaign(
    session: AsyncSession, principal: Principal, id_or_key: str, router: AbRouter
) -> CampaignRecord:
    campaign = await _readable_campaign(session, principal, id_or_key)
    await principal.require(session, "ab_test:write", campaign.use_case_id, f"A/B test '{campaign.key}'")
    if campaign.status not in ACTIVE_STATUSES:
        raise Conflict(
            f"A/B test '{campaign.key}' is already {campaign.status.lower()}; only active tests can be cancelled"
        )
    ended = await _update_if_active(
        session,
        campaign,
        status="CANCELLED",
        end_date=utcnow(),
        active_use_case_id=None,
        note=f"cancelled by {principal.email}",
    )
    if not ended:
        raise Conflict(f"A/B test '{campaign.key}' finished while it was being cancelled")
    await emit(
        session,
        EVENT_CANCELLED,
        use_case_id=campaign.use_case_id,
        payload={"campaignId": str(campaign.id), "campaignKey": campaign.key, "cancelledBy": principal.email},
    )
    router.invalidate(campaign.use_case_id)
    return CampaignRecord.of(campaign)


async def _update_if_active(session: AsyncSession, campaign: orm.AbCampaign, **values: Any) -> bool:
    """Write ``values`` only while the campaign is still active (compare-and-set in one UPDATE), so that
    of two replicas ending or evaluating a campaign at once, exactly one wins and nothing is undone.
    The ORM object is never dirtied before the UPDATE, so no autoflush can overwrite another's end."""
    result = await session.execute(
        update(orm.AbCampaign)
        .where(orm.AbCampaign.id == campaign.id, orm.AbCampaign.status.in_(ACTIVE_STATUSES))
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        await session.refresh(campaign)
        return False
    for name, value in values.items():
        set_committed_value(campaign, name, value)
    return True


# ----------------------------------------------------------------------------- statistics


@dataclass
class CampaignReport:
    campaign: orm.AbCampaign
    data: CampaignData
    result: CampaignResult
    arm_ids: list[uuid.UUID]
    # Set by evaluate_campaign when this very evaluation ended the campaign.
    ended_now: bool = False

    @property
    def feedbacks(self) -> int:
        if self.campaign.feedback_type == "COMPARISON":
            return sum(d.total for (a, b), d in self.data.duels.items() if str(a) < str(b))
        return sum(s.count for s in self.data.metric.values())

    @property
    def p_value(self) -> float:
        """The running minimum while active; frozen at the decision once the campaign ended."""
        stored = self.campaign.p_value
        if self.campaign.status not in ACTIVE_STATUSES and stored is not None:
            return stored
        return self.result.p_value if stored is None else min(stored, self.result.p_value)


async def compute_report(session: AsyncSession, campaign: orm.AbCampaign, config: StatsConfig) -> CampaignReport:
    return (await compute_reports(session, [campaign], config))[campaign.id]


async def compute_reports(
    session: AsyncSession, campaigns: list[orm.AbCampaign], config: StatsConfig
) -> dict[uuid.UUID, CampaignReport]:
    """The report of each campaign (by id), in a fixed number of queries whatever their number."""
    data = await repository.campaign_data(session, campaigns)
    metric_ids = {c.metric_id for c in campaigns if c.feedback_type != "COMPARISON"}
    metrics = {}
    if metric_ids:
        metrics = {
            m.id: m for m in (await session.execute(select(orm.Metric).where(orm.Metric.id.in_(metric_ids)))).scalars()
        }
    return {c.id: _report(c, data[c.id], metrics.get(c.metric_id), config) for c in campaigns}


async def reports_by_id(
    session: AsyncSession, campaign_ids: list[uuid.UUID], config: StatsConfig
) -> dict[uuid.UUID, CampaignReport]:
    """The reports of the campaigns with these ids (for readers that hold records, not rows)."""
    return await compute_reports(session, await repository.campaigns_by_id(session, campaign_ids), config)


def _report(
    campaign: orm.AbCampaign, data: CampaignData, metric: orm.Metric | None, config: StatsConfig
) -> CampaignReport:
    arm_ids = [arm.model_id for arm in campaign.arms]
    names = [str(i) for i in arm_ids]
    assignments = [data.assignments.get(i, 0) for i in arm_ids]
    if campaign.feedback_type == "COMPARISON":
        duels = [
            DuelCounts(str(a), str(b), d.wins, d.losses, d.ties_good + d.ties_bad)
            for (a, b), d in data.duels.items()
            if arm_ids.index(a) < arm_ids.index(b)
        ]
        result = evaluate_preference(names, duels, assignments=assignments, config=config)
    else:
        assert metric is not None  # metric_id is a foreign key that refuses the key's deletion
        arms = [
            MetricArm(
                str(i),
                m.count,
                m.total,
                m.total_sq,
                clusters=m.clusters or None,
                cluster_sum_sq=m.cluster_sum_sq,
                cluster_count_sq=m.cluster_count_sq,
                cluster_cross=m.cluster_cross,
            )
            for i, m in ((i, data.metric[i]) for i in arm_ids)
        ]
        # Bool keys store 0/1; should other values ever be there, the arm is treated as a scalar key.
        boolean = metric.kind == "BOOL" and all(0 <= a.sum <= a.count and a.sum_sq == a.sum for a in arms)
        result = evaluate_metric(
            arms,
            boolean=boolean,
            scoring_type=metric.scoring_type,
            assignments=assignments,
            config=config,
        )
    return CampaignReport(campaign=campaign, data=data, result=result, arm_ids=arm_ids)


async def evaluate_campaign(session: AsyncSession, campaign: orm.AbCampaign, config: StatsConfig) -> CampaignReport:
    """Re-evaluate an active campaign and apply the outcome: WARMUP -> IN_PROGRESS, or DONE with the
    winner (promoted to the use case's default model when ``auto_deploy``) and an event, all in the
    caller's transaction."""
    report = await compute_report(session, campaign, config)
    if campaign.status not in ACTIVE_STATUSES:
        return report
    result = report.result
    values: dict[str, Any] = {
        "last_evaluated_at": utcnow(),
        "p_value": report.p_value,
        "note": "; ".join(result.notes) or None,
    }
    if result.winner is None:
        if result.phase is CampaignPhase.IN_PROGRESS and campaign.status == "WARMUP":
            values["status"] = "IN_PROGRESS"
        if await _update_if_active(session, campaign, **values):
            await history.record(session, report)
        return report
    winner_id = uuid.UUID(result.winner)
    values.update(status="DONE", end_date=utcnow(), active_use_case_id=None, winner_model_id=winner_id)
    if not await _update_if_active(session, campaign, **values):
        return report
    report.ended_now = True
    await history.record(session, report)
    winner = await session.get_one(orm.Model, winner_id)
    deployed = False
    if campaign.auto_deploy:
        deployed = await _promote(session, campaign.use_case_id, winner_id)
        if not deployed:
            note = f"winner '{winner.key}' is no longer attached to the use case; not deployed"
            await session.execute(
                update(orm.AbCampaign)
                .where(orm.AbCampaign.id == campaign.id)
                .values(note=note)
                .execution_options(synchronize_session=False)
            )
            set_committed_value(campaign, "note", note)
    use_case = await session.get_one(orm.UseCase, campaign.use_case_id)
    await emit(
        session,
        EVENT_COMPLETED,
        use_case_id=campaign.use_case_id,
        payload={
            "campaignId": str(campaign.id),
            "campaignKey": campaign.key,
            "useCase": use_case.key,
            "winner": winner.key,
            "pValue": campaign.p_value,
            "autoDeployed": deployed,
        },
    )
    await session.flush()
    return report


async def _promote(session: AsyncSession, use_case_id: uuid.UUID, model_id: uuid.UUID) -> bool:
    """Make the winner the use case's default model (the models domain's one way to do it)."""
    attached = (
        await session.execute(
            select(orm.ModelService).where(
                orm.ModelService.use_case_id == use_case_id, orm.ModelService.model_id == model_id
            )
        )
    ).scalar_one_or_none()
    if attached is None:
        return False
    await set_default(session, use_case_id, attached)
    return True


async def evaluate_active(session_factory, config: StatsConfig) -> int:  # noqa: ANN001
    """Evaluate every active campaign, each in its own transaction. Returns how many ended."""
    from adaptive_engine.server.db.session import unit_of_work

    async with session_factory() as session:
        ids = [c.id for c in await repository.active_campaigns(session)]
    ended = 0
    for campaign_id in ids:
        try:
            async with unit_of_work(session_factory) as session:
                campaign = await session.get(orm.AbCampaign, campaign_id)
                if campaign is None or campaign.status not in ACTIVE_STATUSES:
                    continue
                report = await evaluate_campaign(session, campaign, config)
            ended += report.ended_now  # counted once committed
        except Exception:  # noqa: BLE001 - one broken campaign must not stop the others
            log.exception("evaluating A/B campaign %s failed", campaign_id)
    return ended
