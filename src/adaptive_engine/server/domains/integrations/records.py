"""What the integrations domain hands its readers: plain values built from the rows in one place. An
integration's connection is kept only as shown to callers (secrets masked)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adaptive_engine.server.db.models.integrations import Integration, NotificationDelivery
from adaptive_engine.server.notify import providers


@dataclass(frozen=True, slots=True)
class IntegrationRecord:
    id: uuid.UUID
    team_id: uuid.UUID
    name: str
    provider: str
    capabilities: tuple[str, ...]
    public_connection: dict[str, Any]
    subscriptions: tuple[dict[str, Any], ...]
    delivery_policy: str
    enabled: bool
    created_at: datetime

    @classmethod
    def of(cls, integration: Integration) -> IntegrationRecord:
        return cls(
            id=integration.id,
            team_id=integration.team_id,
            name=integration.name,
            provider=integration.provider,
            capabilities=tuple(providers.PROVIDERS[integration.provider].capabilities),
            public_connection=providers.public_connection(integration.provider, integration.connection or {}),
            subscriptions=tuple(integration.subscriptions or []),
            delivery_policy=integration.delivery_policy,
            enabled=integration.enabled,
            created_at=integration.created_at,
        )


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    id: uuid.UUID
    event_id: uuid.UUID
    topic: str
    status: str
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    # Every attempt so far, oldest first: {started_at, duration_ms, error?, retry_in_s?}.
    attempt_log: tuple[dict[str, Any], ...]
    message: dict[str, Any]
    created_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, delivery: NotificationDelivery) -> DeliveryRecord:
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            topic=delivery.topic,
            status=delivery.status,
            attempts=delivery.attempts,
            max_attempts=delivery.max_attempts,
            next_attempt_at=delivery.next_attempt_at,
            last_error=delivery.last_error,
            attempt_log=tuple(delivery.attempt_log or []),
            message=delivery.message,
            created_at=delivery.created_at,
            delivered_at=delivery.delivered_at,
        )
