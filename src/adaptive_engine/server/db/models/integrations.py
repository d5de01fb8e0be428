"""Integrations of a team (notification channels) and the log of every delivery to them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from adaptive_engine.server.db.base import Base, CreatedAtMixin, IdMixin


class Integration(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "integrations"

    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    provider: Mapped[str] = mapped_column(String(50))
    # The provider's connection settings, secrets included (password, tokens, signing secret): stored,
    # used to deliver, never returned by the API.
    connection: Mapped[dict] = mapped_column(default=dict)
    # [{"topic_pattern": "job.*", "scope": "TEAM", "target_filter": {...} | None}, ...]
    subscriptions: Mapped[list] = mapped_column(default=list)
    delivery_policy: Mapped[str] = mapped_column(String(20), default="multishot")
    enabled: Mapped[bool] = mapped_column(default=True)


class NotificationDelivery(IdMixin, CreatedAtMixin, Base):
    """One event sent to one integration: attempts, outcome and when to try again."""

    __tablename__ = "notification_deliveries"

    event_id: Mapped[uuid.UUID] = mapped_column(index=True)
    integration_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("integrations.id", ondelete="CASCADE"), index=True)
    topic: Mapped[str] = mapped_column(String(200))
    # The message as sent: {"id", "topic", "createdAt", "payload"}.
    message: Mapped[dict] = mapped_column(default=dict)
    # PENDING (waiting for an attempt), SENDING (claimed by a sender), DELIVERED, FAILED (gave up).
    status: Mapped[str] = mapped_column(String(20), default="PENDING")
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=1)
    next_attempt_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    # One entry per attempt: {"started_at": epoch seconds, "duration_ms", "error": str | None,
    # "retry_in_s": the backoff before the next attempt, or None when none follows}.
    attempt_log: Mapped[list] = mapped_column(default=list)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_notification_deliveries_due", "status", "next_attempt_at"),)
