"""Usage roll-ups (requests, tokens, errors, latency, cost per bucket) and the limits set on callers."""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from adaptive_engine.server.db.base import Base, CreatedAtMixin, IdMixin

# Upper bounds (ms) of the latency histogram's buckets; the last bucket holds everything above.
LATENCY_BOUNDS_MS = (10, 25, 50, 100, 200, 350, 500, 750, 1000, 1500, 2000, 3000, 5000, 7500, 10000, 20000, 40000)
LATENCY_COLUMNS = tuple(f"latency_b{i:02d}" for i in range(len(LATENCY_BOUNDS_MS) + 1))
# The roll-ups' id for "no API key" / "no user" (a primary-key column cannot be NULL on PostgreSQL).
NOBODY = uuid.UUID(int=0)


class UsageRollup(Base):
    """Traffic per period (MINUTE, HOUR, DAY) × bucket × use case × model × API key × user, added to by the
    ingest writer in the transaction of the rows themselves (see domains/usage/rollups.py)."""

    __tablename__ = "usage_rollups"

    period: Mapped[str] = mapped_column(String(8), primary_key=True)
    # Epoch seconds of the bucket's start (UTC).
    bucket: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    use_case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), primary_key=True)
    model_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    api_key_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
    cost: Mapped[float] = mapped_column(Float, default=0.0)
    latency_count: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_sum_ms: Mapped[float] = mapped_column(Float, default=0.0)

    __table_args__ = (
        Index("ix_usage_rollups_key_period", "api_key_id", "period", "bucket"),
        Index("ix_usage_rollups_user_period", "user_id", "period", "bucket"),
        Index("ix_usage_rollups_period_bucket", "period", "bucket"),
    )


# One count column per latency bucket: an upsert adds them like the other sums, and buckets merge by addition.
for _column in LATENCY_COLUMNS:
    setattr(UsageRollup, _column, mapped_column(_column, BigInteger, default=0))
    UsageRollup.__annotations__[_column] = Mapped[int]


class UsageLimit(IdMixin, CreatedAtMixin, Base):
    """Limits on one API key, user or use case (``scope``): None is "no limit"."""

    __tablename__ = "usage_limits"

    scope: Mapped[str] = mapped_column(String(12))
    subject_id: Mapped[uuid.UUID] = mapped_column()
    requests_per_minute: Mapped[int | None] = mapped_column(Integer, default=None)
    tokens_per_minute: Mapped[int | None] = mapped_column(BigInteger, default=None)
    max_concurrent: Mapped[int | None] = mapped_column(Integer, default=None)
    budget_daily: Mapped[float | None] = mapped_column(Float, default=None)
    budget_monthly: Mapped[float | None] = mapped_column(Float, default=None)

    __table_args__ = (UniqueConstraint("scope", "subject_id"),)
