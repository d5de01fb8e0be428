"""Retention of the notification tables: finished rows of the event outbox and of the delivery log go once
older than the retention period; rows still waiting to be sent never do."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.db.models import DomainEvent
from adaptive_engine.server.db.models.integrations import NotificationDelivery
from adaptive_engine.server.db.session import rowcount
from adaptive_engine.server.notify.sender import FINAL


async def prune_deliveries(session: AsyncSession, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` deliveries created before ``before`` that were delivered or gave up."""
    # correlate(None): the subquery reads the table itself, it is not a condition on the deleted row.
    chosen = (
        select(NotificationDelivery.id)
        .where(NotificationDelivery.status.in_(FINAL), NotificationDelivery.created_at < before)
        .limit(limit)
        .correlate(None)
    )
    result = await session.execute(
        delete(NotificationDelivery)
        .where(NotificationDelivery.id.in_(chosen))
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


async def prune_events(session: AsyncSession, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` outbox events created before ``before`` that were dispatched and have no
    delivery still waiting to be sent."""
    waiting = exists().where(NotificationDelivery.event_id == DomainEvent.id, NotificationDelivery.status.not_in(FINAL))
    chosen = (
        select(DomainEvent.id)
        .where(DomainEvent.delivered_at.is_not(None), DomainEvent.created_at < before, ~waiting)
        .limit(limit)
        .correlate(None)
    )
    result = await session.execute(
        delete(DomainEvent).where(DomainEvent.id.in_(chosen)).execution_options(synchronize_session=False)
    )
    return rowcount(result)
