"""Feedback on completions: direct metric values, pairwise preferences and session outcomes."""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from adaptive_engine.server.db.base import Base, CreatedAtMixin, IdMixin


class Feedback(IdMixin, CreatedAtMixin, Base):
    """A value of a feedback key (metric) given to one completion."""

    __tablename__ = "feedbacks"

    completion_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("completions.id", ondelete="CASCADE"))
    metric_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("metrics.id", ondelete="CASCADE"))
    # The completion's use case, kept here so statistics need no join to filter by use case.
    use_case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"))
    # Bool keys store 0.0 / 1.0.
    value: Mapped[float] = mapped_column(Float)
    reason: Mapped[str | None] = mapped_column(String(200), default=None)
    details: Mapped[str | None] = mapped_column(Text, default=None)
    user_ref: Mapped[str | None] = mapped_column(String(200), default=None)

    __table_args__ = (
        Index("ix_feedbacks_completion", "completion_id"),
        # With created_at: a time series reads only the edges of its range from here (the rest from
        # FeedbackHourly); statistics use its (use_case_id, metric_id) prefix.
        Index("ix_feedbacks_use_case_metric_created", "use_case_id", "metric_id", "created_at"),
        # A use case's feedback of every key in a time window (the activity's totals).
        Index("ix_feedbacks_use_case_created", "use_case_id", "created_at"),
    )


class FeedbackHourly(Base):
    """Metric feedback per use case, key, hour and model of the completion: count, sum, sum of squares, lowest
    and highest (mean, interval and range per bucket or window), added to as feedback is written
    (domains/interactions/rollups.py)."""

    __tablename__ = "feedback_hourly"

    use_case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), primary_key=True)
    metric_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("metrics.id", ondelete="CASCADE"), primary_key=True)
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    # The completion's model key ("" for none).
    model_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[float] = mapped_column(Float, default=0.0)
    total_sq: Mapped[float] = mapped_column(Float, default=0.0)
    min_value: Mapped[float] = mapped_column(Float, default=0.0)
    max_value: Mapped[float] = mapped_column(Float, default=0.0)


class Comparison(IdMixin, CreatedAtMixin, Base):
    """A preference between two completions of the same prompt, on a feedback key."""

    __tablename__ = "comparisons"

    use_case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"))
    metric_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("metrics.id", ondelete="CASCADE"))
    preferred_completion_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("completions.id", ondelete="CASCADE"))
    other_completion_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("completions.id", ondelete="CASCADE"))
    # None: the preferred one won; "good" / "bad": both were equally good / bad.
    tied: Mapped[str | None] = mapped_column(String(10), default=None)
    user_ref: Mapped[str | None] = mapped_column(String(200), default=None)

    __table_args__ = (
        Index("ix_comparisons_preferred", "preferred_completion_id"),
        Index("ix_comparisons_other", "other_completion_id"),
        Index("ix_comparisons_use_case_metric", "use_case_id", "metric_id"),
    )


class Outcome(IdMixin, CreatedAtMixin, Base):
    """A value of a feedback key given to a whole user session."""

    __tablename__ = "outcomes"

    use_case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"))
    metric_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("metrics.id", ondelete="CASCADE"))
    session_id: Mapped[uuid.UUID] = mapped_column(index=True)
    value: Mapped[float] = mapped_column(Float)
    user_ref: Mapped[str | None] = mapped_column(String(200), default=None)
