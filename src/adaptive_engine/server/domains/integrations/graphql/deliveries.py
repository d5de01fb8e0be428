"""GraphQL of an integration's delivery log: each notification sent, its attempts and outcome."""

from __future__ import annotations

import uuid

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import requires
from adaptive_engine.server.domains.integrations import service
from adaptive_engine.server.domains.integrations.graphql.integrations import MANAGE, integration_team
from adaptive_engine.server.domains.integrations.records import DeliveryRecord
from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.graphql.common import CursorPageInput, PageInfo
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.scalars import JSON
from adaptive_engine.server.timestamps import epoch


@strawberry.type(name="NotificationAttempt")
class AttemptType:
    started_at: float = strawberry.field(description="Seconds since the epoch (millisecond precision)")
    duration_ms: int
    error: str | None = strawberry.field(description="Why it failed; null when delivered")
    retry_in_s: float | None = strawberry.field(description="Backoff before the next attempt; null when none follows")


@strawberry.type(name="NotificationDelivery")
class DeliveryType:
    id: uuid.UUID
    event_id: uuid.UUID
    topic: str
    status: str
    attempts: int
    max_attempts: int
    next_attempt_at: int | None = strawberry.field(description="When the next attempt is due (PENDING only)")
    last_error: str | None
    attempt_log: list[AttemptType] = strawberry.field(description="Every attempt so far, oldest first")
    message: JSON
    created_at: int
    delivered_at: int | None


def to_gql_delivery(delivery: DeliveryRecord) -> DeliveryType:
    return DeliveryType(
        id=delivery.id,
        event_id=delivery.event_id,
        topic=delivery.topic,
        status=delivery.status,
        attempts=delivery.attempts,
        max_attempts=delivery.max_attempts,
        next_attempt_at=epoch(delivery.next_attempt_at) if delivery.status == "PENDING" else None,
        last_error=delivery.last_error,
        attempt_log=[
            AttemptType(
                started_at=a["started_at"],
                duration_ms=a["duration_ms"],
                error=a.get("error"),
                retry_in_s=a.get("retry_in_s"),
            )
            for a in delivery.attempt_log
        ],
        message=JSON(delivery.message),
        created_at=epoch(delivery.created_at) or 0,
        delivered_at=epoch(delivery.delivered_at),
    )


@strawberry.type(name="NotificationDeliveryConnection")
class DeliveryConnection:
    total_count: int
    page_info: PageInfo
    nodes: list[DeliveryType]


@strawberry.type
class DeliveryQuery:
    @strawberry.field(
        extensions=[requires(MANAGE, team=integration_team)],
        description="The delivery log, newest first, in cursor pages; status: only deliveries in these states",
    )
    async def notification_deliveries(
        self,
        info: Info[Context, None],
        id: uuid.UUID,
        page: CursorPageInput | None = None,  # noqa: A002
        status: list[str] | None = None,
    ) -> DeliveryConnection:
        ctx = info.context
        page = page or CursorPageInput(first=50)
        if page.offset:
            raise InvalidInput("offset paging is not supported for deliveries: use cursors (after / before)")
        result, total = await service.deliveries(
            ctx.session,
            ctx.principal,
            id,
            first=page.first,
            last=page.last,
            after=page.after,
            before=page.before,
            statuses=status,
        )
        return DeliveryConnection(
            total_count=total,
            page_info=PageInfo.of(result),
            nodes=[to_gql_delivery(r) for r in result.items],
        )
