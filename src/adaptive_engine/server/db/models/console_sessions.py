"""Web console sessions: an API key exchanged for a cookie (see auth/sessions.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from adaptive_engine.server.db.base import Base, CreatedAtMixin, IdMixin
from adaptive_engine.server.db.models.identity import ApiKey


class ConsoleSession(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "console_sessions"

    # SHA-256 of the random session id the cookie holds; the id itself is never stored.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    # The key it was opened with: the session works only while that key does (deleting it deletes the session).
    api_key_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)

    api_key: Mapped[ApiKey] = relationship(lazy="joined")
