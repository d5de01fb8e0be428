"""The outbox of domain events (A/B campaign finished, ...), for the notification sender."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from adaptive_engine.server.db.base import Base, CreatedAtMixin, IdMixin


class DomainEvent(IdMixin, CreatedAtMixin, Base):
    """Transactional outbox: events written in the same transaction as the change they announce.

    The notification sender reads undelivered rows (``delivered_at`` NULL) and marks them delivered.
    """

    __tablename__ = "domain_events"

    # e.g. "ab_campaign.completed"
    type: Mapped[str] = mapped_column(String(100))
    use_case_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), default=None)
    payload: Mapped[dict] = mapped_column(default=dict)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_domain_events_undelivered", "delivered_at", "created_at"),)
