"""A/B campaigns and their arms."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from adaptive_engine.server.db.base import Base, CreatedAtMixin, IdMixin
from adaptive_engine.server.db.models.registry import Model

ACTIVE_STATUSES = ("WARMUP", "IN_PROGRESS")


class AbCampaign(IdMixin, CreatedAtMixin, Base):
    """An A/B campaign on one use case. ``created_at`` is its begin date."""

    __tablename__ = "ab_campaigns"

    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    use_case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), index=True)
    metric_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("metrics.id", ondelete="RESTRICT"))
    # DIRECT (metric values) or COMPARISON (preferences), as the wire enum FeedbackType.
    feedback_type: Mapped[str] = mapped_column(String(20))
    traffic_split: Mapped[float] = mapped_column(Float)
    auto_deploy: Mapped[bool] = mapped_column(default=False)
    # WARMUP, IN_PROGRESS, DONE, CANCELLED (wire enum AbcampaignStatus).
    status: Mapped[str] = mapped_column(String(20), default="WARMUP")
    # The use case while the campaign is active, NULL once it ends: a unique column, so the database
    # itself refuses a second active campaign on a use case (NULLs never collide, on SQLite and PostgreSQL).
    active_use_case_id: Mapped[uuid.UUID | None] = mapped_column(unique=True, default=None)
    end_date: Mapped[datetime | None] = mapped_column(default=None)
    winner_model_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("models.id", ondelete="SET NULL"), default=None
    )
    # Always-valid p-value: the running minimum over evaluations (still valid, and never goes up).
    p_value: Mapped[float | None] = mapped_column(Float, default=None)
    last_evaluated_at: Mapped[datetime | None] = mapped_column(default=None)
    # Why the campaign ended or what holds it (sample-ratio mismatch, cancelled by whom ...).
    note: Mapped[str | None] = mapped_column(Text, default=None)

    arms: Mapped[list[AbCampaignArm]] = relationship(
        back_populates="campaign", cascade="all, delete-orphan", lazy="selectin", order_by="AbCampaignArm.position"
    )


class AbCampaignArm(Base):
    """A model taking part in a campaign."""

    __tablename__ = "ab_campaign_arms"

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ab_campaigns.id", ondelete="CASCADE"), primary_key=True)
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)

    campaign: Mapped[AbCampaign] = relationship(back_populates="arms")
    model: Mapped[Model] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("campaign_id", "position"),)


class AbEvaluation(IdMixin, CreatedAtMixin, Base):
    """One evaluation of a campaign that saw new data or changed its state: the estimates as they were then,
    so the always-valid interval can be drawn narrowing over time. Kept per campaign up to a bound, thinned
    evenly beyond it (domains/ab_tests/history.py)."""

    __tablename__ = "ab_evaluations"

    campaign_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ab_campaigns.id", ondelete="CASCADE"))
    feedbacks: Mapped[int] = mapped_column(Integer)
    # The campaign's always-valid p-value (running minimum) after this evaluation.
    p_value: Mapped[float] = mapped_column(Float)
    # WARMUP / IN_PROGRESS (the statistics' phase) and continue / winner.
    phase: Mapped[str] = mapped_column(String(20))
    decision: Mapped[str] = mapped_column(String(20))
    winner_model_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # [{"model_id", "count", "mean", "low", "high"}] per arm, in the campaign's order.
    arms: Mapped[list] = mapped_column(default=list)
    # [{"a", "b", "estimate", "low", "high", "p_value"}] per pair of arms (model ids).
    pairs: Mapped[list] = mapped_column(default=list)
    sample_ratio_p_value: Mapped[float | None] = mapped_column(Float, default=None)

    __table_args__ = (Index("ix_ab_evaluations_campaign_created", "campaign_id", "created_at"),)
