"""Queries of the A/B test domain: campaigns, and the sufficient statistics computed in SQL.

The statistics are aggregates over indexed columns (``completions.ab_campaign_id``), so evaluating
campaigns costs at most three grouped queries whatever their traffic and their number, and the
decision code in ``statistics`` gets only counts and sums.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.lookup import find_by_id_or_key
from adaptive_engine.server.db.models.ab_tests import ACTIVE_STATUSES


async def find_campaign(session: AsyncSession, id_or_key: str | uuid.UUID) -> orm.AbCampaign | None:
    return await find_by_id_or_key(session, orm.AbCampaign, id_or_key)


async def campaigns_by_id(session: AsyncSession, ids: list[uuid.UUID]) -> list[orm.AbCampaign]:
    return list((await session.execute(select(orm.AbCampaign).where(orm.AbCampaign.id.in_(ids)))).scalars())


async def active_campaign(session: AsyncSession, use_case_id: uuid.UUID) -> orm.AbCampaign | None:
    query = select(orm.AbCampaign).where(orm.AbCampaign.active_use_case_id == use_case_id)
    return (await session.execute(query)).scalar_one_or_none()


async def active_campaigns(session: AsyncSession) -> list[orm.AbCampaign]:
    query = select(orm.AbCampaign).where(orm.AbCampaign.status.in_(ACTIVE_STATUSES)).order_by(orm.AbCampaign.created_at)
    return list((await session.execute(query)).scalars())


async def list_campaigns(
    session: AsyncSession,
    *,
    use_case_ids: list[uuid.UUID] | None,
    active: bool | None,
    status: str | None,
) -> list[orm.AbCampaign]:
    """``use_case_ids``: restrict to these use cases (None: all)."""
    query = select(orm.AbCampaign).order_by(orm.AbCampaign.created_at.desc(), orm.AbCampaign.key)
    if use_case_ids is not None:
        query = query.where(orm.AbCampaign.use_case_id.in_(use_case_ids))
    if active is True:
        query = query.where(orm.AbCampaign.status.in_(ACTIVE_STATUSES))
    elif active is False:
        query = query.where(orm.AbCampaign.status.not_in(ACTIVE_STATUSES))
    if status is not None:
        query = query.where(orm.AbCampaign.status == status)
    return list((await session.execute(query)).scalars())


@dataclass
class MetricStats:
    count: int = 0
    total: float = 0.0
    total_sq: float = 0.0
    # Per assignment unit (session): K units, sum of S_i^2, N_i^2 and S_i N_i (S/N: unit sum/count).
    clusters: int = 0
    cluster_sum_sq: float = 0.0
    cluster_count_sq: float = 0.0
    cluster_cross: float = 0.0


@dataclass
class DuelStats:
    """Duels between two arms, from the side of ``model_id`` against ``opponent_id``."""

    wins: int = 0
    losses: int = 0
    ties_good: int = 0
    ties_bad: int = 0

    @property
    def total(self) -> int:
        return self.wins + self.losses + self.ties_good + self.ties_bad


@dataclass
class CampaignData:
    """Everything the decision needs, per arm (model id)."""

    metric: dict[uuid.UUID, MetricStats] = field(default_factory=dict)
    duels: dict[tuple[uuid.UUID, uuid.UUID], DuelStats] = field(default_factory=dict)
    assignments: dict[uuid.UUID, int] = field(default_factory=dict)


def _unit(completion: Any) -> Any:
    """The unit of assignment: the session, or the request when there is none, or the completion."""
    return func.coalesce(completion.session_id, completion.request_id, completion.id)


async def metric_stats(
    session: AsyncSession, campaigns: list[orm.AbCampaign]
) -> dict[uuid.UUID, dict[uuid.UUID, MetricStats]]:
    """Per campaign, per arm: count, sum and sum of squares of the campaign key's feedback on the arm's
    completions, and the same grouped by assignment unit (sessions give several values; the test accounts
    for it). One query for all the campaigns.

    Every feedback row is one observation (a completion rated twice counts twice)."""
    feedback, completion, campaign, arm = orm.Feedback, orm.Completion, orm.AbCampaign, orm.AbCampaignArm
    out = {c.id: {a.model_id: MetricStats() for a in c.arms} for c in campaigns}
    if not out:
        return out
    unit = _unit(completion)
    per_unit = (
        select(
            completion.ab_campaign_id.label("campaign_id"),
            completion.model_id.label("model_id"),
            func.count(feedback.value).label("n"),
            func.sum(feedback.value).label("s"),
            func.sum(feedback.value * feedback.value).label("q"),
        )
        .join(completion, completion.id == feedback.completion_id)
        .join(campaign, campaign.id == completion.ab_campaign_id)
        .join(arm, (arm.campaign_id == completion.ab_campaign_id) & (arm.model_id == completion.model_id))
        .where(completion.ab_campaign_id.in_(list(out)), feedback.metric_id == campaign.metric_id)
        .group_by(completion.ab_campaign_id, completion.model_id, unit)
        .subquery()
    )
    query = select(
        per_unit.c.campaign_id,
        per_unit.c.model_id,
        func.count(),
        func.sum(per_unit.c.n),
        func.sum(per_unit.c.s),
        func.sum(per_unit.c.q),
        func.sum(per_unit.c.s * per_unit.c.s),
        func.sum(per_unit.c.n * per_unit.c.n),
        func.sum(per_unit.c.s * per_unit.c.n),
    ).group_by(per_unit.c.campaign_id, per_unit.c.model_id)
    for campaign_id, model_id, units, count, total, total_sq, ss, nn, sn in (await session.execute(query)).all():
        out[campaign_id][model_id] = MetricStats(
            count=int(count),
            total=float(total),
            total_sq=float(total_sq),
            clusters=int(units),
            cluster_sum_sq=float(ss),
            cluster_count_sq=float(nn),
            cluster_cross=float(sn),
        )
    return out


async def duel_stats(
    session: AsyncSession, campaigns: list[orm.AbCampaign]
) -> dict[uuid.UUID, dict[tuple[uuid.UUID, uuid.UUID], DuelStats]]:
    """Per campaign: preferences on the campaign key between completions of two different arms of the
    campaign, keyed by (model, opponent), both directions filled. One query for all the campaigns."""
    comparison, campaign = orm.Comparison, orm.AbCampaign
    preferred, other = aliased(orm.Completion), aliased(orm.Completion)
    preferred_arm, other_arm = aliased(orm.AbCampaignArm), aliased(orm.AbCampaignArm)
    out: dict[uuid.UUID, dict[tuple[uuid.UUID, uuid.UUID], DuelStats]] = {c.id: {} for c in campaigns}
    if not out:
        return out
    query = (
        select(preferred.ab_campaign_id, preferred.model_id, other.model_id, comparison.tied, func.count())
        .join(preferred, preferred.id == comparison.preferred_completion_id)
        .join(other, other.id == comparison.other_completion_id)
        .join(campaign, campaign.id == preferred.ab_campaign_id)
        .join(
            preferred_arm, (preferred_arm.campaign_id == campaign.id) & (preferred_arm.model_id == preferred.model_id)
        )
        .join(other_arm, (other_arm.campaign_id == campaign.id) & (other_arm.model_id == other.model_id))
        .where(
            preferred.ab_campaign_id.in_(list(out)),
            other.ab_campaign_id == preferred.ab_campaign_id,
            comparison.metric_id == campaign.metric_id,
            preferred.model_id != other.model_id,
        )
        .group_by(preferred.ab_campaign_id, preferred.model_id, other.model_id, comparison.tied)
    )
    for campaign_id, winner, loser, tied, count in (await session.execute(query)).all():
        if campaign_id is None or winner is None or loser is None:  # nullable columns the joins never leave empty
            continue
        duels = out[campaign_id]
        forward = duels.setdefault((winner, loser), DuelStats())
        backward = duels.setdefault((loser, winner), DuelStats())
        if tied == "good":
            forward.ties_good += count
            backward.ties_good += count
        elif tied == "bad":
            forward.ties_bad += count
            backward.ties_bad += count
        else:
            forward.wins += count
            backward.losses += count
    return out


async def assignment_counts(
    session: AsyncSession, campaigns: list[orm.AbCampaign]
) -> dict[uuid.UUID, dict[uuid.UUID, int]]:
    """Per campaign: units the router assigned to each arm, distinct sessions (a request when it has none),
    over the campaign's LIVE completions (interactions logged offline are not assignments). One query."""
    completion, arm = orm.Completion, orm.AbCampaignArm
    out = {c.id: {a.model_id: 0 for a in c.arms} for c in campaigns}
    if not out:
        return out
    unit = _unit(completion)
    query = (
        select(completion.ab_campaign_id, completion.model_id, func.count(func.distinct(unit)))
        .join(arm, (arm.campaign_id == completion.ab_campaign_id) & (arm.model_id == completion.model_id))
        .where(completion.ab_campaign_id.in_(list(out)), completion.source == "LIVE")
        .group_by(completion.ab_campaign_id, completion.model_id)
    )
    for campaign_id, model_id, count in (await session.execute(query)).all():
        if campaign_id is not None and model_id is not None:  # nullable columns the join never leaves empty
            out[campaign_id][model_id] = int(count)
    return out


async def campaign_data(session: AsyncSession, campaigns: list[orm.AbCampaign]) -> dict[uuid.UUID, CampaignData]:
    """What the decision needs for each campaign (by id), in at most three queries whatever their number."""
    assignments = await assignment_counts(session, campaigns)
    by_metric = [c for c in campaigns if c.feedback_type != "COMPARISON"]
    by_duel = [c for c in campaigns if c.feedback_type == "COMPARISON"]
    metric = await metric_stats(session, by_metric) if by_metric else {}
    duels = await duel_stats(session, by_duel) if by_duel else {}
    return {
        c.id: CampaignData(metric=metric.get(c.id, {}), duels=duels.get(c.id, {}), assignments=assignments[c.id])
        for c in campaigns
    }
