"""Feedback keys (the wire protocol calls them metrics) and their links to use cases."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from adaptive_engine.server.db.base import Base, CreatedAtMixin, IdMixin


class Metric(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "metrics"

    key: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # SCALAR or BOOL
    kind: Mapped[str] = mapped_column(String(20))
    # HIGHER_IS_BETTER or LOWER_IS_BETTER
    scoring_type: Mapped[str] = mapped_column(String(20), default="HIGHER_IS_BETTER")
    description: Mapped[str] = mapped_column(Text, default="")


class UseCaseMetric(CreatedAtMixin, Base):
    __tablename__ = "use_case_metrics"

    use_case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), primary_key=True)
    metric_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("metrics.id", ondelete="CASCADE"), primary_key=True)
