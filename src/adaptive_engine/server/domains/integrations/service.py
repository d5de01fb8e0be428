"""Integrations of a team: validation, visibility, CRUD and test notifications.

Team-level permission checks are declared on the GraphQL fields (``integration:manage`` in the team);
an integration of a team the caller is not in is reported as not found.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import replace
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.lookup import find_by_id_or_key, parse_uuid
from adaptive_engine.server.db.models import Team, User
from adaptive_engine.server.db.models.integrations import (
    Integration,
    NotificationDelivery,
)
from adaptive_engine.server.db.pagination import Page, paginate
from adaptive_engine.server.domains.integrations.records import DeliveryRecord, IntegrationRecord
from adaptive_engine.server.errors import (
    AlreadyExists,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from adaptive_engine.server.notify import providers
from adaptive_engine.server.notify.providers import ALL_SCOPES, NOTIFICATION_CHANNEL
from adaptive_engine.server.notify.sender import EventScope, Notifier
from adaptive_engine.server.outbound import OutboundGuard
from adaptive_engine.server.timestamps import utcnow

TOPIC_PATTERN = re.compile(r"^[A-Za-z0-9_.*?\[\]-]{1,200}$")
TOPIC = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
POLICIES = ("multishot", "singleshot")


def list_providers() -> list[providers.Provider]:
    return list(providers.PROVIDERS.values())


def get_provider(name: str) -> providers.Provider:
    found = providers.PROVIDERS.get(providers.ALIASES.get(name.lower(), name.lower()))
    if found is None:
        raise NotFound(f"provider '{name}' not found")
    return found


async def visible_integration(session: AsyncSession, principal: Principal, integration_id: Any) -> Integration:
    """The integration, if the caller is in its team (or an admin); otherwise NOT_FOUND, like a missing one."""
    as_id = parse_uuid(integration_id)
    found = await session.get(Integration, as_id) if as_id else None
    if found is None or not (principal.is_admin or found.team_id in principal.team_permissions):
        raise NotFound(f"integration '{integration_id}' not found")
    return found


async def get_integration(session: AsyncSession, principal: Principal, integration_id: Any) -> IntegrationRecord:
    return IntegrationRecord.of(await visible_integration(session, principal, integration_id))


async def _team(session: AsyncSession, team: str) -> Team:
    found = await find_by_id_or_key(session, Team, team)
    if found is None:
        raise NotFound(f"team '{team}' not found")
    return found


def _name(name: str | None) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise InvalidInput("an integration needs a name of 1 to 200 characters")
    return name


def validate_subscriptions(principal: Principal, provider: providers.Provider, subscriptions: list[dict]) -> list[dict]:
    if subscriptions and NOTIFICATION_CHANNEL not in provider.capabilities:
        raise InvalidInput(f"provider '{provider.name}' sends no notifications: it takes no subscriptions")
    out = []
    for sub in subscriptions:
        pattern = str(sub.get("topic_pattern") or "")
        if not TOPIC_PATTERN.match(pattern):
            raise InvalidInput(
                f"topic pattern '{pattern}' is malformed: letters, digits, '.', '_', '-' and the globs * ? []"
            )
        scope = str(sub.get("scope") or "")
        if scope not in ALL_SCOPES or scope not in provider.allowed_scopes:
            raise InvalidInput(f"scope '{scope}' is not allowed for provider '{provider.name}'")
        if scope in ("ORGANIZATION", "ADMIN") and not principal.is_admin:
            raise PermissionDenied(f"only admins can subscribe with scope {scope}")
        target = sub.get("target_filter")
        if target is not None and not isinstance(target, dict):
            raise InvalidInput("targetFilter must be a JSON object (payload field -> value or list of values)")
        out.append({"topic_pattern": pattern, "scope": scope, "target_filter": target})
    return out


def _policy(value: str | None, default: str = "multishot") -> str:
    policy = value or default
    if policy not in POLICIES:
        raise InvalidInput(f"delivery policy '{policy}' is unknown: use multishot or singleshot")
    return policy


def generated_secret(provider: str, given: dict[str, Any], stored: dict[str, Any]) -> str | None:
    """The webhook signing secret the server made because the caller gave none (None otherwise): the
    creating call returns it, once, so that the receiver can check signatures."""
    if provider == "webhook" and not given.get("secret"):
        return stored["secret"]
    return None


async def create_integration(
    session: AsyncSession,
    principal: Principal,
    team_key: str,
    *,
    name: str,
    provider: str,
    connection: dict[str, Any],
    subscriptions: list[dict] | None,
    delivery_policy: str | None,
    guard: OutboundGuard,
) -> tuple[IntegrationRecord, str | None]:
    """The new integration, and the webhook signing secret the server made for it when none was given."""
    team = await _team(session, team_key)
    spec = providers.provider(provider)
    name = _name(name)
    stored = providers.validate_connection(spec.name, connection, guard=guard)
    subs = validate_subscriptions(principal, spec, subscriptions or [])
    exists = await session.execute(
        select(Integration.id).where(Integration.team_id == team.id, Integration.name == name)
    )
    if exists.first():
        raise AlreadyExists(f"team '{team.key}' already has an integration named '{name}'")
    row = Integration(
        team_id=team.id,
        name=name,
        provider=spec.name,
        connection=stored,
        subscriptions=subs,
        delivery_policy=_policy(delivery_policy),
        enabled=True,
    )
    session.add(row)
    await session.flush()
    return IntegrationRecord.of(row), generated_secret(row.provider, connection, row.connection)


async def list_integrations(session: AsyncSession, team_key: str) -> list[IntegrationRecord]:
    team = await _team(session, team_key)
    rows = await session.execute(
        select(Integration).where(Integration.team_id == team.id).order_by(Integration.created_at)
    )
    return [IntegrationRecord.of(r) for r in rows.scalars()]


async def update_integration(
    session: AsyncSession,
    principal: Principal,
    integration_id: Any,
    *,
    name: str | None = None,
    enabled: bool | None = None,
    connection: dict[str, Any] | None = None,
    subscriptions: list[dict] | None = None,
    delivery_policy: str | None = None,
    guard: OutboundGuard,
) -> IntegrationRecord:
    integration = await visible_integration(session, principal, integration_id)
    spec = providers.provider(integration.provider)
    if name is not None:
        new_name = _name(name)
        clash = await session.execute(
            select(Integration.id).where(
                Integration.team_id == integration.team_id,
                Integration.name == new_name,
                Integration.id != integration.id,
            )
        )
        if clash.first():
            raise AlreadyExists(f"the team already has an integration named '{new_name}'")
        integration.name = new_name
    if connection is not None:
        integration.connection = providers.validate_connection(
            spec.name, connection, previous=integration.connection, guard=guard
        )
    if subscriptions is not None:
        integration.subscriptions = validate_subscriptions(principal, spec, subscriptions)
    if delivery_policy is not None:
        integration.delivery_policy = _policy(delivery_policy)
    if enabled is not None:
        integration.enabled = enabled
    await session.flush()
    return IntegrationRecord.of(integration)


async def rotate_secret(
    session: AsyncSession, principal: Principal, integration_id: Any
) -> tuple[IntegrationRecord, str]:
    """Replace a webhook's signing secret with a new one made by the server and return it (the only time
    it is shown). Deliveries already queued are signed with the new secret when they are attempted."""
    integration = await visible_integration(session, principal, integration_id)
    if integration.provider != "webhook":
        raise InvalidInput(f"only webhook integrations have a signing secret, not {integration.provider}")
    secret = providers.new_secret()
    integration.connection = {**integration.connection, "secret": secret}
    await session.flush()
    return IntegrationRecord.of(integration), secret


async def delete_integration(session: AsyncSession, principal: Principal, integration_id: Any) -> bool:
    await session.delete(await visible_integration(session, principal, integration_id))
    await session.flush()
    return True


DELIVERY_STATUSES = ("PENDING", "SENDING", "DELIVERED", "FAILED")


async def deliveries(
    session: AsyncSession,
    principal: Principal,
    integration_id: Any,
    *,
    first: int | None = None,
    last: int | None = None,
    after: str | None = None,
    before: str | None = None,
    statuses: list[str] | None = None,
) -> tuple[Page[DeliveryRecord], int]:
    """A page of the integration's delivery log, newest first, and how many deliveries match in all."""
    integration = await visible_integration(session, principal, integration_id)
    for status in statuses or []:
        if status not in DELIVERY_STATUSES:
            raise InvalidInput(f"delivery status '{status}' is unknown: use {', '.join(DELIVERY_STATUSES)}")
    condition = NotificationDelivery.integration_id == integration.id
    if statuses:
        condition = condition & NotificationDelivery.status.in_(statuses)
    page = await paginate(
        session,
        select(NotificationDelivery).where(condition),
        NotificationDelivery,
        first=first,
        last=last,
        after=after,
        before=before,
    )
    total = (
        await session.execute(select(func.count()).select_from(NotificationDelivery).where(condition))
    ).scalar_one()
    return replace(page, items=[DeliveryRecord.of(d) for d in page.items]), total


async def test_scope(
    session: AsyncSession,
    principal: Principal,
    *,
    users: list[Any] | None,
    team: str | None,
    organization: bool,
    admin: bool,
) -> EventScope:
    """The scope of a test notification; the caller may only address what they manage."""
    scope = EventScope(organization=organization, admin=admin)
    if not (users or team or organization or admin):
        raise InvalidInput("a test notification needs a scope: users, a team, organization or admin")
    if (organization or admin) and not principal.is_admin:
        raise PermissionDenied("only admins can send organization or admin notifications")
    if team:
        found = await find_by_id_or_key(session, Team, team)
        if found is None:
            raise NotFound(f"team '{team}' not found")
        principal.require_team("integration:manage", found.id, found.key)
        scope.teams.append(found.id)
    for value in users or []:
        user_id = parse_uuid(value)
        user = await session.get(User, user_id) if user_id else None
        if user is None:
            raise NotFound(f"user '{value}' not found")
        if user.id != principal.user_id and not principal.has_global("user:manage"):
            raise NotFound(f"user '{value}' not found")
        scope.users.append(user.id)
    return scope


async def send_test_notification(
    notifier: Notifier, topic: str, scope: EventScope, payload: dict[str, Any]
) -> tuple[uuid.UUID, str]:
    """Publish a test event and return at once: the sender delivers it in the background, and each
    integration's delivery log (notificationDeliveries) shows the outcome."""
    if not TOPIC.match(topic or ""):
        raise InvalidInput(f"topic '{topic}' is malformed: letters, digits, '.', '_' and '-'")
    event_id = await notifier.publish(topic, scope, {**payload, "test": True, "sentAt": utcnow().isoformat()})
    count = await notifier.audience(event_id)
    if not count:
        return event_id, f"no enabled integration subscribes to '{topic}' in this scope"
    return event_id, (
        f"queued for {count} integration(s): their delivery logs (notificationDeliveries) show the "
        f"outcome of event {event_id}"
    )
