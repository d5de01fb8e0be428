"""What the A/B tests domain hands its readers: plain values built from the rows in one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adaptive_engine.server.db.models import AbCampaign, AbEvaluation
from adaptive_engine.server.domains.models.records import ModelRecord


@dataclass(frozen=True, slots=True)
class CampaignRecord:
    id: uuid.UUID
    key: str
    name: str
    status: str
    feedback_type: str
    traffic_split: float
    auto_deploy: bool
    use_case_id: uuid.UUID
    metric_id: uuid.UUID
    winner_model_id: uuid.UUID | None
    # The begin date.
    created_at: datetime
    end_date: datetime | None
    # The variants, in the campaign's order.
    arms: tuple[ModelRecord, ...]

    @classmethod
    def of(cls, campaign: AbCampaign) -> CampaignRecord:
        return cls(
            id=campaign.id,
            key=campaign.key,
            name=campaign.name,
            status=campaign.status,
            feedback_type=campaign.feedback_type,
            traffic_split=campaign.traffic_split,
            auto_deploy=campaign.auto_deploy,
            use_case_id=campaign.use_case_id,
            metric_id=campaign.metric_id,
            winner_model_id=campaign.winner_model_id,
            created_at=campaign.created_at,
            end_date=campaign.end_date,
            arms=tuple(ModelRecord.of(arm.model) for arm in campaign.arms),
        )


@dataclass(frozen=True, slots=True)
class EvaluationRecord:
    """One kept evaluation of a campaign: ``arms`` and ``pairs`` as history.py stores them."""

    created_at: datetime
    feedbacks: int
    p_value: float
    phase: str
    decision: str
    winner_model_id: uuid.UUID | None
    arms: tuple[dict[str, Any], ...]
    pairs: tuple[dict[str, Any], ...]
    sample_ratio_p_value: float | None

    @classmethod
    def of(cls, evaluation: AbEvaluation) -> EvaluationRecord:
        return cls(
            created_at=evaluation.created_at,
            feedbacks=evaluation.feedbacks,
            p_value=evaluation.p_value,
            phase=evaluation.phase,
            decision=evaluation.decision,
            winner_model_id=evaluation.winner_model_id,
            arms=tuple(evaluation.arms),
            pairs=tuple(evaluation.pairs),
            sample_ratio_p_value=evaluation.sample_ratio_p_value,
        )
