"""The event bus and the notification sender (``Platform.events``).

Publishing — other domains announce what happened:

    await emit(session, "job.completed", use_case_id=job.use_case_id, payload={...})     # notify/events.py:
        # in the caller's transaction (outbox): the event exists exactly when the change was committed
    await platform.events.publish("model.error", EventScope(use_case_id=..., admin=True), {...})
        # outside a transaction (own commit), then wakes the sender

Topics in use: job.completed, job.failed, ab_campaign.completed (A/B test decided: winner, promoted or
not), ab_campaign.cancelled, model.online (a model finished loading, or an online model was deployed on
a use case), model.error. Subscriptions match topics with glob patterns
("job.*", "*").

Sending — a background task drains the outbox: each event is claimed once (compare-and-set, so several
replicas can run it), matched against the enabled integrations' subscriptions and turned into one
delivery per integration (table notification_deliveries: the delivery log). Deliveries are attempted with a
timeout and a size limit; a failed attempt is retried with exponential backoff up to the attempt limit
("multishot") or not at all ("singleshot"); errors that retrying cannot fix (HTTP 4xx, bad credentials)
fail at once. Each integration is a lane of its own: at most one of its deliveries is in flight in a
process, each attempt runs in its own task and records its outcome when it ends, so a receiver that hangs
delays only its own deliveries, never another integration's.

Scopes of a subscription: TEAM — events of the use cases shared with the integration's team (or addressed
to the team); USER — events addressed to a member of the team; ORGANIZATION — every event; ADMIN —
events addressed to admins. ORGANIZATION and ADMIN subscriptions can only be set by admins.
"""

from __future__ import annotations

import asyncio
import fnmatch
import functools
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adaptive_engine.server.db.models import DomainEvent, TeamMember, UseCaseShare
from adaptive_engine.server.db.models.integrations import (
    Integration,
    NotificationDelivery,
)
from adaptive_engine.server.db.session import rowcount, unit_of_work
from adaptive_engine.server.errors import PayloadTooLarge
from adaptive_engine.server.notify import providers
from adaptive_engine.server.notify.events import emit
from adaptive_engine.server.observability.metrics import Metrics
from adaptive_engine.server.outbound import OutboundGuard
from adaptive_engine.server.periodic import PeriodicService, cancel_task
from adaptive_engine.server.timestamps import epoch, utcnow

log = logging.getLogger("adaptive_engine.notify")
SCOPE_KEY = "_scope"
FINAL = ("DELIVERED", "FAILED")


@dataclass
class EventScope:
    """Who an event concerns, beyond the use case's teams."""

    use_case_id: uuid.UUID | None = None
    teams: list[uuid.UUID] = field(default_factory=list)
    users: list[uuid.UUID] = field(default_factory=list)
    organization: bool = False
    admin: bool = False

    def extras(self) -> dict[str, Any]:
        return {
            "teams": [str(t) for t in self.teams],
            "users": [str(u) for u in self.users],
            "organization": self.organization,
            "admin": self.admin,
        }


@dataclass
class SenderSettings:
    timeout_s: float = 10.0
    max_message_bytes: int = 256 * 1024
    max_attempts: int = 5
    backoff_s: float = 2.0
    max_backoff_s: float = 300.0
    poll_interval_s: float = 1.0
    # Due deliveries looked at per round, and attempts in flight at once in this process (one per integration).
    batch: int = 100
    max_in_flight: int = 256
    # Private and loopback receivers (see server/outbound.py); link-local/metadata ones never.
    allow_private_networks: bool = True


def notifier_settings(settings: Any) -> SenderSettings:
    """The sender's settings from the server's."""
    return SenderSettings(
        timeout_s=settings.notify_timeout_s,
        max_message_bytes=settings.notify_max_message_bytes,
        max_attempts=settings.notify_max_attempts,
        backoff_s=settings.notify_backoff_s,
        poll_interval_s=settings.notify_poll_interval_s,
        allow_private_networks=settings.allow_private_networks,
    )


def backoff(settings: SenderSettings, attempts: int) -> float:
    return min(settings.max_backoff_s, settings.backoff_s * 2 ** max(0, attempts - 1))


async def announce_job_end(session: AsyncSession, job_id: uuid.UUID, status: str, error: str | None) -> None:
    """Emit job.completed / job.failed in the caller's transaction (the job runner's)."""
    from adaptive_engine.server.db.models import Job

    job = await session.get(Job, job_id)
    if job is None:
        return
    scope = EventScope(use_case_id=job.use_case_id, users=[job.created_by_id] if job.created_by_id else [])
    payload = {
        # A job's error can be a long traceback: the message keeps its head, well under the size limit.
        "jobId": str(job.id),
        "jobName": job.name,
        "jobStatus": status,
        "error": error[:4000] if error else error,
        SCOPE_KEY: scope.extras(),
    }
    await emit(
        session,
        f"job.{'completed' if status == 'COMPLETED' else 'failed'}",
        use_case_id=job.use_case_id,
        payload=payload,
    )


async def announce_model_status(session: AsyncSession, model: Any) -> None:
    """Emit model.online / model.error in the caller's transaction, for the teams of the use cases the model
    serves (and for admins, on errors)."""
    from adaptive_engine.server.db.models import ModelService

    rows = await session.execute(
        select(UseCaseShare.team_id)
        .join(ModelService, ModelService.use_case_id == UseCaseShare.use_case_id)
        .where(ModelService.model_id == model.id)
    )
    failed = model.status == "ERROR"
    scope = EventScope(teams=sorted({t for (t,) in rows}), admin=failed)
    payload = {
        "modelId": str(model.id),
        "modelKey": model.key,
        "status": model.status,
        "error": model.error,
        SCOPE_KEY: scope.extras(),
    }
    await emit(session, "model.error" if failed else "model.online", payload=payload)


async def announce_model_deployed(session: AsyncSession, model: Any, use_case_id: uuid.UUID) -> None:
    """Emit model.online for one use case, in the caller's transaction: a model already online (an external
    one, or a local one loaded for another use case) was just deployed there, so it serves there now. A model
    that still has to load announces itself when it does (announce_model_status)."""
    payload = {"modelId": str(model.id), "modelKey": model.key, "status": model.status, "error": None}
    await emit(session, "model.online", use_case_id=use_case_id, payload=payload)


def subscription_matches(sub: dict[str, Any], topic: str, payload: dict[str, Any]) -> bool:
    if not fnmatch.fnmatchcase(topic, sub.get("topic_pattern") or ""):
        return False
    wanted = sub.get("target_filter") or {}
    for key, value in wanted.items():
        actual = payload.get(key)
        if isinstance(value, list):
            if actual not in value:
                return False
        elif actual != value:
            return False
    return True


class Notifier(PeriodicService):
    """Drains the outbox and attempts due deliveries every ``poll_interval_s`` seconds, or at once when woken
    (an event published, a lane freed)."""

    name = "notification-sender"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: SenderSettings | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings or SenderSettings()
        super().__init__(self.settings.poll_interval_s)
        self.sessionmaker = sessionmaker
        self.metrics = metrics or Metrics()
        self._client: httpx.AsyncClient | None = None
        self.guard = OutboundGuard(self.settings.allow_private_networks)
        # integration id -> the task attempting its delivery now (its lane is busy until it ends)
        self._in_flight: dict[uuid.UUID, asyncio.Task[None]] = {}

    # --------------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        limits = httpx.Limits(max_connections=self.settings.max_in_flight, max_keepalive_connections=20)
        # No redirects (a receiver could bounce us to a refused address); every connection goes to an address
        # the outbound guard vetted when connecting (kept-alive ones are reused for the same host name only).
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.settings.timeout_s),
            follow_redirects=False,
            trust_env=False,
            transport=self.guard.transport(limits),
        )
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        # Attempts cut short stay SENDING and are taken again once stale (after a restart too).
        for task in list(self._in_flight.values()):
            await cancel_task(task)
        self._in_flight.clear()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def publish_from_thread(
        self,
        topic: str,
        scope: EventScope | None = None,
        payload: dict[str, Any] | None = None,
        timeout_s: float = 30.0,
    ) -> uuid.UUID:
        """``publish`` for code running outside the server's event loop (threads, tests)."""
        assert self.loop is not None, "the sender has not been started"
        future = asyncio.run_coroutine_threadsafe(self.publish(topic, scope, payload), self.loop)
        return future.result(timeout_s)

    # --------------------------------------------------------------------------------- publishing

    def check_size(self, payload: dict[str, Any]) -> None:
        size = len(json.dumps(payload, default=str))
        if size > self.settings.max_message_bytes:
            raise PayloadTooLarge(
                f"event payload of {size} bytes exceeds the limit of {self.settings.max_message_bytes}"
            )

    async def publish(
        self,
        topic: str,
        scope: EventScope | None = None,
        payload: dict[str, Any] | None = None,
        session: AsyncSession | None = None,
    ) -> uuid.UUID:
        """Announce an event. With ``session`` it is written in that transaction (delivered once it commits);
        without, it is committed at once. Returns the event id."""
        scope = scope or EventScope()
        body = {**(payload or {}), SCOPE_KEY: scope.extras()}
        self.check_size(body)
        if session is not None:
            event = await emit(session, topic, use_case_id=scope.use_case_id, payload=body)
            await session.flush()
            return event.id
        async with unit_of_work(self.sessionmaker) as own:
            event = await emit(own, topic, use_case_id=scope.use_case_id, payload=body)
            await own.flush()
            event_id = event.id
        self.wake()
        return event_id

    # --------------------------------------------------------------------------------- one round

    async def _pass(self) -> int:
        """Dispatch undelivered events, then attempt due deliveries. Returns the attempts made."""
        await self.dispatch_events()
        return await self.attempt_due()

    async def dispatch_events(self) -> int:
        from adaptive_engine.server.notify.events import undelivered

        count = 0
        async with unit_of_work(self.sessionmaker) as session:
            for event in await undelivered(session, limit=100):
                claimed = await session.execute(
                    update(DomainEvent)
                    .where(DomainEvent.id == event.id, DomainEvent.delivered_at.is_(None))
                    .values(delivered_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
                if rowcount(claimed) != 1:
                    continue
                for integration in await self._targets(session, event):
                    session.add(self._delivery(event, integration))
                    count += 1
        return count

    def _delivery(self, event: DomainEvent, integration: Integration) -> NotificationDelivery:
        payload = {k: v for k, v in (event.payload or {}).items() if k != SCOPE_KEY}
        message = {
            "id": str(event.id),
            "topic": event.type,
            "createdAt": epoch(event.created_at),
            "useCaseId": str(event.use_case_id) if event.use_case_id else None,
            "payload": payload,
        }
        attempts = self.settings.max_attempts if integration.delivery_policy == "multishot" else 1
        return NotificationDelivery(
            event_id=event.id,
            integration_id=integration.id,
            topic=event.type,
            message=message,
            status="PENDING",
            max_attempts=attempts,
            next_attempt_at=utcnow(),
        )

    async def _targets(self, session: AsyncSession, event: DomainEvent) -> list[Integration]:
        notifying = [p.name for p in providers.PROVIDERS.values() if providers.NOTIFICATION_CHANNEL in p.capabilities]
        integrations = list(
            (
                await session.execute(
                    select(Integration).where(Integration.enabled.is_(True), Integration.provider.in_(notifying))
                )
            ).scalars()
        )
        if not integrations:
            return []
        extras = (event.payload or {}).get(SCOPE_KEY) or {}
        payload = {k: v for k, v in (event.payload or {}).items() if k != SCOPE_KEY}
        teams = {uuid.UUID(t) for t in extras.get("teams", [])}
        if event.use_case_id is not None:
            rows = await session.execute(
                select(UseCaseShare.team_id).where(UseCaseShare.use_case_id == event.use_case_id)
            )
            teams |= {t for (t,) in rows}
        users = [uuid.UUID(u) for u in extras.get("users", [])]
        user_teams: set[uuid.UUID] = set()
        if users:
            rows = await session.execute(select(TeamMember.team_id).where(TeamMember.user_id.in_(users)))
            user_teams = {t for (t,) in rows}
        chosen = []
        for integration in integrations:
            for sub in integration.subscriptions or []:
                scope = sub.get("scope")
                in_scope = (
                    (scope == "TEAM" and integration.team_id in teams)
                    or (scope == "USER" and integration.team_id in user_teams)
                    or scope == "ORGANIZATION"
                    or (scope == "ADMIN" and bool(extras.get("admin")))
                )
                if in_scope and subscription_matches(sub, event.type, payload):
                    chosen.append(integration)
                    break
        return chosen

    async def attempt_due(self) -> int:
        """Claim the due deliveries whose integration has none in flight here (one each), and start each
        attempt in its own task, which records the outcome when it ends. Returns the attempts started."""
        room = self.settings.max_in_flight - len(self._in_flight)
        if room <= 0:
            return 0
        now = utcnow()
        stale = now - timedelta(seconds=self.settings.timeout_s * 3 + 30)
        busy = list(self._in_flight)
        async with unit_of_work(self.sessionmaker) as session:
            query = (
                select(NotificationDelivery)
                .where(
                    or_(
                        (NotificationDelivery.status == "PENDING") & (NotificationDelivery.next_attempt_at <= now),
                        (NotificationDelivery.status == "SENDING") & (NotificationDelivery.next_attempt_at <= stale),
                    )
                )
                .order_by(NotificationDelivery.next_attempt_at)
                .limit(self.settings.batch)
            )
            if busy:
                query = query.where(NotificationDelivery.integration_id.notin_(busy))
            claimed: list[tuple[uuid.UUID, uuid.UUID, str, dict, dict]] = []
            for row in (await session.execute(query)).scalars().all():
                if len(claimed) >= room or any(c[1] == row.integration_id for c in claimed):
                    continue  # its lane is taken this round: it goes next round, in order
                result = await session.execute(
                    update(NotificationDelivery)
                    .where(
                        NotificationDelivery.id == row.id,
                        NotificationDelivery.status == row.status,
                        NotificationDelivery.attempts == row.attempts,
                    )
                    .values(status="SENDING", next_attempt_at=now)
                    .execution_options(synchronize_session=False)
                )
                if rowcount(result) != 1:
                    continue
                integration = await session.get(Integration, row.integration_id)
                if integration is None:
                    continue
                claimed.append(
                    (
                        row.id,
                        row.integration_id,
                        integration.provider if integration.enabled else "",
                        dict(integration.connection),
                        row.message,
                    )
                )
        # Started once the claims are committed: an outcome is never written before its claim.
        for delivery_id, integration_id, provider_name, connection, message in claimed:
            task = asyncio.create_task(
                self._deliver(delivery_id, provider_name, connection, message), name=f"notification-{delivery_id}"
            )
            self._in_flight[integration_id] = task
            task.add_done_callback(functools.partial(self._lane_done, integration_id))
        return len(claimed)

    def _lane_done(self, integration_id: uuid.UUID, _task: asyncio.Task[None]) -> None:
        self._lane_free(integration_id)

    def _lane_free(self, integration_id: uuid.UUID) -> None:
        self._in_flight.pop(integration_id, None)
        self.wake()  # its next delivery, if one is due, need not wait for the poll interval

    async def _deliver(self, delivery_id: uuid.UUID, provider_name: str, connection: dict, message: dict) -> None:
        """One attempt, then its outcome in the delivery log."""
        started = utcnow()
        began = asyncio.get_running_loop().time()
        error = await self._attempt(provider_name, connection, message)
        seconds = asyncio.get_running_loop().time() - began
        outcome = "unrecorded"
        try:
            outcome = await self._record(delivery_id, error, started, int(seconds * 1000))
        except Exception:  # the row stays SENDING and is taken again once stale
            log.exception("could not record the outcome of delivery %s", delivery_id)
        provider = provider_name or "none"
        self.metrics.notification_deliveries(provider, outcome).inc()
        self.metrics.notification_duration(provider).observe(seconds)

    async def _record(
        self, delivery_id: uuid.UUID, error: providers.DeliveryFailed | None, started: datetime, duration_ms: int
    ) -> str:
        """The attempt in the delivery's log; returns its outcome: delivered, retrying, failed (or gone)."""
        async with unit_of_work(self.sessionmaker) as session:
            row = await session.get(NotificationDelivery, delivery_id)
            if row is None:
                return "gone"
            row.attempts += 1
            entry: dict[str, Any] = {
                "started_at": round(started.timestamp(), 3),
                "duration_ms": duration_ms,
                "error": None,
                "retry_in_s": None,
            }
            if error is None:
                row.status, row.delivered_at, row.last_error, row.next_attempt_at = "DELIVERED", utcnow(), None, None
            elif error.retryable and row.attempts < row.max_attempts:
                delay = backoff(self.settings, row.attempts)
                row.status, row.next_attempt_at = "PENDING", utcnow() + timedelta(seconds=delay)
                entry.update(error=str(error)[:1000], retry_in_s=delay)
            else:
                row.status, row.next_attempt_at = "FAILED", None
                entry["error"] = str(error)[:1000]
            row.last_error = entry["error"]
            # A new list: the JSON column is not mutation-tracked.
            row.attempt_log = [*(row.attempt_log or []), entry]
            return "delivered" if error is None else "retrying" if row.status == "PENDING" else "failed"

    async def _attempt(self, provider_name: str, connection: dict, message: dict) -> providers.DeliveryFailed | None:
        if not provider_name:
            return providers.DeliveryFailed("integration disabled", retryable=False)
        if self._client is None:  # stopped while the delivery waited: tried again after the next start
            return providers.DeliveryFailed("the notification sender is stopped")
        limits = providers.Limits(
            timeout_s=self.settings.timeout_s, max_body_bytes=self.settings.max_message_bytes, guard=self.guard
        )
        try:
            await asyncio.wait_for(
                providers.deliver(provider_name, connection, message, self._client, limits),
                timeout=self.settings.timeout_s + 1,
            )
        except providers.DeliveryFailed as failed:
            return failed
        except TimeoutError:
            return providers.DeliveryFailed(f"timed out after {self.settings.timeout_s:g} s")
        except Exception as exc:  # a provider bug must not stop the sender
            log.exception("delivery failed unexpectedly")
            return providers.DeliveryFailed(f"internal error: {type(exc).__name__}")
        return None

    async def audience(self, event_id: uuid.UUID) -> int:
        """How many integrations the event goes to (whoever dispatches it, now or later)."""
        async with self.sessionmaker() as session:
            event = await session.get(DomainEvent, event_id)
            return len(await self._targets(session, event)) if event is not None else 0
