"""Domain events, written to the outbox table in the caller's transaction.

An event exists exactly when the change it announces was committed; the notification sender
(integrations) delivers undelivered rows and marks them.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.db.models import DomainEvent


async def emit(
    session: AsyncSession, type: str, *, use_case_id: uuid.UUID | None = None, payload: dict[str, Any] | None = None
) -> DomainEvent:
    event = DomainEvent(type=type, use_case_id=use_case_id, payload=payload or {})
    session.add(event)
    return event


async def undelivered(session: AsyncSession, limit: int = 100) -> list[DomainEvent]:
    query = (
        select(DomainEvent)
        .where(DomainEvent.delivered_at.is_(None))
        .order_by(DomainEvent.created_at, DomainEvent.id)
        .limit(limit)
    )
    return list((await session.execute(query)).scalars())
