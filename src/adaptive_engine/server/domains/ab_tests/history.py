"""The evaluation history of A/B campaigns: each evaluation that saw new feedback or changed the campaign's
phase or decision keeps the estimates of that moment (``ab_evaluations``), so the console can draw the
always-valid interval narrowing over time.

Bounded: past ``MAX_KEPT`` evaluations of a campaign, every other one is dropped (the first and the latest
stay), so a long campaign keeps an evenly thinned history of its whole life in at most ``MAX_KEPT`` rows.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.db.models import AbEvaluation
from adaptive_engine.server.domains.ab_tests.records import EvaluationRecord

if TYPE_CHECKING:
    from adaptive_engine.server.domains.ab_tests.service import CampaignReport

MAX_KEPT = 400


async def record(session: AsyncSession, report: CampaignReport) -> AbEvaluation | None:
    """Keep this evaluation unless it says what the previous one said (same feedback, phase and decision)."""
    campaign, result = report.campaign, report.result
    winner = campaign.winner_model_id or (uuid.UUID(result.winner) if result.winner else None)
    decision = "winner" if winner is not None else "continue"
    phase = result.phase.value
    last = (
        await session.execute(
            select(AbEvaluation.feedbacks, AbEvaluation.phase, AbEvaluation.decision)
            .where(AbEvaluation.campaign_id == campaign.id)
            .order_by(AbEvaluation.created_at.desc(), AbEvaluation.id.desc())
            .limit(1)
        )
    ).first()
    if last is not None and tuple(last) == (report.feedbacks, phase, decision):
        return None
    row = AbEvaluation(
        campaign_id=campaign.id,
        feedbacks=report.feedbacks,
        p_value=report.p_value,
        phase=phase,
        decision=decision,
        winner_model_id=winner,
        sample_ratio_p_value=result.srm.p_value,
        arms=[
            {"model_id": a.arm, "count": a.count, "mean": a.mean, "low": a.ci_low, "high": a.ci_high}
            for a in result.arms
        ],
        pairs=[
            {
                "a": p.arm_a,
                "b": p.arm_b,
                "estimate": p.estimate,
                "low": p.ci_low,
                "high": p.ci_high,
                "p_value": p.p_value,
            }
            for p in result.pairs
        ],
    )
    session.add(row)
    await session.flush()
    await _thin(session, campaign.id)
    return row


async def _thin(session: AsyncSession, campaign_id: uuid.UUID) -> None:
    kept = (
        await session.execute(
            select(func.count()).select_from(AbEvaluation).where(AbEvaluation.campaign_id == campaign_id)
        )
    ).scalar_one()
    if kept <= MAX_KEPT:
        return
    ids = list(
        (
            await session.execute(
                select(AbEvaluation.id)
                .where(AbEvaluation.campaign_id == campaign_id)
                .order_by(AbEvaluation.created_at, AbEvaluation.id)
            )
        ).scalars()
    )
    await session.execute(delete(AbEvaluation).where(AbEvaluation.id.in_(ids[1:-1:2])))


async def history(session: AsyncSession, campaign_id: uuid.UUID) -> list[EvaluationRecord]:
    """The kept evaluations of a campaign, oldest first."""
    query = (
        select(AbEvaluation)
        .where(AbEvaluation.campaign_id == campaign_id)
        .order_by(AbEvaluation.created_at, AbEvaluation.id)
    )
    return [EvaluationRecord.of(e) for e in (await session.execute(query)).scalars()]
