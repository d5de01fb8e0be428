"""GraphQL of test notifications: send one to the integrations subscribed to a topic in a scope."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import requires
from adaptive_engine.server.domains.integrations import service
from adaptive_engine.server.domains.integrations.graphql.integrations import MANAGE
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.scalars import JSON, Timestamp
from adaptive_engine.server.timestamps import epoch


@strawberry.enum(name="JobStatusGQL")
class JobStatusGQL(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    CANCELLED = "CANCELLED"
    ERROR = "ERROR"


@strawberry.type(name="TestNotificationResult")
class TestNotificationResult:
    event_id: uuid.UUID
    message: str


@strawberry.input(name="OrganizationInput")
class OrganizationInput:
    empty: str | None = None


@strawberry.input(name="AdminInput")
class AdminInput:
    empty: str | None = None


@strawberry.input(name="NotificationScopeInput")
class NotificationScopeInput:
    user: list[uuid.UUID] | None = None
    team: str | None = None
    organization: OrganizationInput | None = None
    admin: AdminInput | None = None


@strawberry.input(name="JobUpdatePayload")
class JobUpdatePayload:
    job_id: uuid.UUID
    job_name: str
    job_status: JobStatusGQL
    job_progress: float
    job_started_at: Timestamp
    use_case_id: uuid.UUID
    job_ended_at: Timestamp | None = None
    job_input: JSON | None = None
    job_outputs: list[JSON] | None = None
    job_error: str | None = None


@strawberry.input(name="NotificationPayload")
class NotificationPayload:
    job_update: JobUpdatePayload | None = None


@strawberry.input(name="TestNotificationInput")
class TestNotificationInput:
    topic: str
    scope: NotificationScopeInput
    payload: NotificationPayload


def _payload(given: NotificationPayload) -> dict[str, Any]:
    if given.job_update is None:
        return {}
    job = given.job_update

    def stamp(value: datetime | None) -> int | None:
        return epoch(value)

    return {
        "jobUpdate": {
            "jobId": str(job.job_id),
            "jobName": job.job_name,
            "jobStatus": job.job_status.value,
            "jobProgress": job.job_progress,
            "jobStartedAt": stamp(job.job_started_at),
            "jobEndedAt": stamp(job.job_ended_at),
            "useCaseId": str(job.use_case_id),
            "jobInput": job.job_input,
            "jobOutputs": list(job.job_outputs or []),
            "jobError": job.job_error,
        }
    }


@strawberry.type
class TestNotificationMutation:
    @strawberry.mutation(
        extensions=[requires(MANAGE, team="input.scope.team")],
        description="Send a test notification to the integrations subscribed to the topic in the scope; returns at "
        "once with the event id, and each integration's delivery log (notificationDeliveries) shows the outcome",
    )
    async def test_notification(
        self, info: Info[Context, None], input: TestNotificationInput
    ) -> TestNotificationResult:
        ctx = info.context
        scope = await service.test_scope(
            ctx.session,
            ctx.principal,
            users=input.scope.user,
            team=input.scope.team,
            organization=input.scope.organization is not None,
            admin=input.scope.admin is not None,
        )
        event_id, message = await service.send_test_notification(
            ctx.platform.events, input.topic, scope, _payload(input.payload)
        )
        return TestNotificationResult(event_id=event_id, message=message)
