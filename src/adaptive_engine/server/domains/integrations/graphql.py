"""GraphQL of integrations: providers, a team's integrations, test notifications and the delivery log."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import authenticated, requires
from adaptive_engine.server.db.models.integrations import (
    Integration,
    NotificationDelivery,
)
from adaptive_engine.server.domains.integrations import service
from adaptive_engine.server.graphql.common import CursorPageInput, PageInfo
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.scalars import JSON, IdOrKey, Timestamp
from adaptive_engine.server.notify import providers
from adaptive_engine.server.timestamps import epoch


@strawberry.enum(name="IntegrationCapability")
class IntegrationCapability(enum.Enum):
    NOTIFICATION_CHANNEL = "NOTIFICATION_CHANNEL"
    DATA_SOURCE = "DATA_SOURCE"
    CODE_SOURCE = "CODE_SOURCE"


@strawberry.enum(name="DeliveryScope")
class DeliveryScope(enum.Enum):
    USER = "USER"
    TEAM = "TEAM"
    ORGANIZATION = "ORGANIZATION"
    ADMIN = "ADMIN"


@strawberry.enum(name="DeliveryScopeInput")
class DeliveryScopeInput(enum.Enum):
    USER = "USER"
    TEAM = "TEAM"
    ORGANIZATION = "ORGANIZATION"
    ADMIN = "ADMIN"


@strawberry.enum(name="DeliveryPolicy")
class DeliveryPolicy(enum.Enum):
    multishot = "multishot"
    singleshot = "singleshot"


@strawberry.enum(name="DeliveryPolicyInput")
class DeliveryPolicyInput(enum.Enum):
    multishot = "multishot"
    singleshot = "singleshot"


@strawberry.enum(name="JobStatusGQL")
class JobStatusGQL(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    CANCELLED = "CANCELLED"
    ERROR = "ERROR"


@strawberry.type(name="Provider")
class ProviderType:
    spec: strawberry.Private[providers.Provider]

    @strawberry.field
    def name(self) -> str:
        return self.spec.name

    @strawberry.field
    def description(self) -> str:
        return self.spec.description

    @strawberry.field
    def capabilities(self) -> list[IntegrationCapability]:
        return [IntegrationCapability(c) for c in self.spec.capabilities]

    @strawberry.field
    def allowed_scopes(self) -> list[DeliveryScope]:
        return [DeliveryScope(s) for s in self.spec.allowed_scopes]


@strawberry.type(name="SlackConfig")
class SlackConfig:
    webhook_url: str
    bot_token: str | None


@strawberry.type(name="SmtpConfig")
class SmtpConfig:
    host: str
    port: int
    username: str | None
    from_email: str
    to_emails: list[str]


@strawberry.type(name="WebhookConfig")
class WebhookConfig:
    url: str
    method: str
    headers: JSON = strawberry.field(description="Header names; values are secret and shown masked")


@strawberry.type(name="GitHubConfig")
class GitHubConfig:
    api_token: str
    org: str | None
    repo: str | None


ConnectionConfig = Annotated[
    SlackConfig | SmtpConfig | WebhookConfig | GitHubConfig, strawberry.union("ConnectionConfig")
]


@strawberry.type(name="NotificationSubscription")
class SubscriptionType:
    topic_pattern: str
    scope: DeliveryScope
    target_filter: JSON | None


@strawberry.type(name="NotificationSettings")
class NotificationSettingsType:
    subscriptions: list[SubscriptionType]


@strawberry.type(name="IntegrationConfig")
class IntegrationConfigType:
    provider: str
    connection: ConnectionConfig
    notification_settings: NotificationSettingsType | None
    delivery_policy: DeliveryPolicy


def _connection(row: Integration) -> Any:
    shown = providers.public_connection(row.provider, row.connection or {})
    if row.provider == "slack":
        return SlackConfig(**shown)
    if row.provider == "smtp":
        return SmtpConfig(**shown)
    if row.provider == "webhook":
        return WebhookConfig(**shown)
    return GitHubConfig(**shown)


@strawberry.type(name="Integration")
class IntegrationType:
    row: strawberry.Private[Integration]
    # Set only in the answer of the mutation that made the secret (create without one, rotate).
    revealed_secret: strawberry.Private[str | None] = None

    @strawberry.field(
        description="The webhook's signing secret, made by the server: returned only by createIntegration (when "
        "no secret was given) and rotateIntegrationSecret; null everywhere else"
    )
    def signing_secret(self) -> str | None:
        return self.revealed_secret

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def team_id(self) -> uuid.UUID:
        return self.row.team_id

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def capabilities(self) -> list[IntegrationCapability]:
        return [IntegrationCapability(c) for c in providers.PROVIDERS[self.row.provider].capabilities]

    @strawberry.field
    def config(self) -> IntegrationConfigType:
        subs = [
            SubscriptionType(
                topic_pattern=s["topic_pattern"], scope=DeliveryScope(s["scope"]), target_filter=s.get("target_filter")
            )
            for s in self.row.subscriptions or []
        ]
        return IntegrationConfigType(
            provider=self.row.provider,
            connection=_connection(self.row),
            notification_settings=NotificationSettingsType(subscriptions=subs),
            delivery_policy=DeliveryPolicy(self.row.delivery_policy),
        )

    @strawberry.field
    def enabled(self) -> bool:
        return self.row.enabled

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0


@strawberry.type(name="NotificationAttempt")
class AttemptType:
    started_at: float = strawberry.field(description="Seconds since the epoch (millisecond precision)")
    duration_ms: int
    error: str | None = strawberry.field(description="Why it failed; null when delivered")
    retry_in_s: float | None = strawberry.field(description="Backoff before the next attempt; null when none follows")


@strawberry.type(name="NotificationDelivery")
class DeliveryType:
    row: strawberry.Private[NotificationDelivery]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def event_id(self) -> uuid.UUID:
        return self.row.event_id

    @strawberry.field
    def topic(self) -> str:
        return self.row.topic

    @strawberry.field
    def status(self) -> str:
        return self.row.status

    @strawberry.field
    def attempts(self) -> int:
        return self.row.attempts

    @strawberry.field
    def max_attempts(self) -> int:
        return self.row.max_attempts

    @strawberry.field(description="When the next attempt is due (PENDING only)")
    def next_attempt_at(self) -> int | None:
        return epoch(self.row.next_attempt_at) if self.row.status == "PENDING" else None

    @strawberry.field
    def last_error(self) -> str | None:
        return self.row.last_error

    @strawberry.field(description="Every attempt so far, oldest first")
    def attempt_log(self) -> list[AttemptType]:
        return [
            AttemptType(
                started_at=a["started_at"],
                duration_ms=a["duration_ms"],
                error=a.get("error"),
                retry_in_s=a.get("retry_in_s"),
            )
            for a in self.row.attempt_log or []
        ]

    @strawberry.field
    def message(self) -> JSON:
        return self.row.message

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0

    @strawberry.field
    def delivered_at(self) -> int | None:
        return epoch(self.row.delivered_at)


@strawberry.type(name="NotificationDeliveryConnection")
class DeliveryConnection:
    total_count: int
    page_info: PageInfo
    nodes: list[DeliveryType]


@strawberry.type(name="TestNotificationResult")
class TestNotificationResult:
    event_id: uuid.UUID
    message: str


# ------------------------------------------------------------------------------------------------ inputs


@strawberry.input(name="ConnectionConfigInputSlack")
class ConnectionConfigInputSlack:
    webhook_url: str
    bot_token: str | None = None


@strawberry.input(name="ConnectionConfigInputSmtp")
class ConnectionConfigInputSmtp:
    host: str
    port: int
    username: str
    password: str
    from_email: str
    to_emails: list[str]


@strawberry.input(name="ConnectionConfigInputWebhook")
class ConnectionConfigInputWebhook:
    url: str
    method: str = "POST"
    headers: JSON | None = None
    secret: str | None = strawberry.field(
        default=None,
        description="HMAC-SHA256 signing secret (X-Adaptive-Signature); when not given, the server makes one and "
        "createIntegration returns it once in signingSecret",
    )


@strawberry.input(name="ConnectionConfigInputGitHub")
class ConnectionConfigInputGitHub:
    api_token: str
    org: str | None = None
    repo: str | None = None


@strawberry.input(name="ConnectionConfigInput")
class ConnectionConfigInput:
    slack: ConnectionConfigInputSlack | None = None
    smtp: ConnectionConfigInputSmtp | None = None
    webhook: ConnectionConfigInputWebhook | None = None
    git_hub: ConnectionConfigInputGitHub | None = None


@strawberry.input(name="SubscriptionInput")
class SubscriptionInput:
    topic_pattern: str
    scope: DeliveryScopeInput
    target_filter: JSON | None = None


@strawberry.input(name="NotificationSettingsInput")
class NotificationSettingsInput:
    subscriptions: list[SubscriptionInput]


@strawberry.input(name="CreateIntegrationConfigInput")
class CreateIntegrationConfigInput:
    connection: ConnectionConfigInput
    notification_settings: NotificationSettingsInput | None = None
    delivery_policy: DeliveryPolicyInput | None = None


@strawberry.input(name="CreateIntegrationInput")
class CreateIntegrationInput:
    name: str
    provider: str
    config: CreateIntegrationConfigInput


@strawberry.input(name="UpdateIntegrationConfigInput")
class UpdateIntegrationConfigInput:
    connection: ConnectionConfigInput | None = None
    notification_settings: NotificationSettingsInput | None = None
    delivery_policy: DeliveryPolicyInput | None = None


@strawberry.input(name="UpdateIntegrationInput")
class UpdateIntegrationInput:
    name: str | None = None
    config: UpdateIntegrationConfigInput | None = None
    enabled: bool | None = None


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


_CONNECTION_KEYS = {"slack": "slack", "smtp": "smtp", "webhook": "webhook", "git_hub": "github"}


def _connection_input(provider: str | None, given: ConnectionConfigInput) -> dict[str, Any]:
    chosen = [(name, getattr(given, name)) for name in _CONNECTION_KEYS if getattr(given, name) is not None]
    if len(chosen) != 1:
        raise service.InvalidInput("give exactly one connection: slack, smtp, webhook or gitHub")
    name, value = chosen[0]
    if provider is not None and _CONNECTION_KEYS[name] != providers.provider(provider).name:
        raise service.InvalidInput(
            f"provider '{provider}' takes a {providers.provider(provider).name} connection, not {name}"
        )
    return {k: v for k, v in vars(value).items()}


def _subscriptions(settings: NotificationSettingsInput | None) -> list[dict] | None:
    if settings is None:
        return None
    return [
        {"topic_pattern": s.topic_pattern, "scope": s.scope.value, "target_filter": s.target_filter}
        for s in settings.subscriptions
    ]


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


async def integration_team(ctx: Context, kwargs: dict[str, Any]) -> uuid.UUID:
    """Guard target of fields taking an integration id: its team (NOT_FOUND when the caller is not in it)."""
    return (await service.visible_integration(ctx.session, ctx.principal, kwargs["id"])).team_id


MANAGE = "integration:manage"


@strawberry.type
class IntegrationQuery:
    @strawberry.field(extensions=[authenticated()])
    def providers(self) -> list[ProviderType]:
        return [ProviderType(spec=p) for p in service.list_providers()]

    @strawberry.field(extensions=[authenticated()])
    def provider(self, name: str) -> ProviderType | None:
        return ProviderType(spec=service.get_provider(name))

    @strawberry.field(extensions=[requires(MANAGE, team="team")])
    async def integrations(self, info: Info[Context, None], team: IdOrKey) -> list[IntegrationType]:
        ctx = info.context
        found = await service.find_by_id_or_key(ctx.session, service.Team, team)
        return [IntegrationType(row=r) for r in await service.list_integrations(ctx.session, found)]

    @strawberry.field(extensions=[requires(MANAGE, team=integration_team)])
    async def integration(self, info: Info[Context, None], id: uuid.UUID) -> IntegrationType | None:  # noqa: A002
        ctx = info.context
        return IntegrationType(row=await service.visible_integration(ctx.session, ctx.principal, id))

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
            raise service.InvalidInput("offset paging is not supported for deliveries: use cursors (after / before)")
        found = await service.visible_integration(ctx.session, ctx.principal, id)
        result, total = await service.deliveries(
            ctx.session, found, first=page.first, last=page.last, after=page.after, before=page.before, statuses=status
        )
        return DeliveryConnection(
            total_count=total,
            page_info=PageInfo.of(result),
            nodes=[DeliveryType(row=r) for r in result.items],
        )


@strawberry.type
class IntegrationMutation:
    @strawberry.mutation(extensions=[requires(MANAGE, team="team")])
    async def create_integration(
        self, info: Info[Context, None], team: IdOrKey, input: CreateIntegrationInput
    ) -> IntegrationType:
        ctx = info.context
        found = await service.find_by_id_or_key(ctx.session, service.Team, team)
        config = input.config
        connection = _connection_input(input.provider, config.connection)
        row = await service.create_integration(
            ctx.session,
            ctx.principal,
            found,
            name=input.name,
            provider=input.provider,
            connection=connection,
            subscriptions=_subscriptions(config.notification_settings),
            delivery_policy=config.delivery_policy.value if config.delivery_policy else None,
            guard=ctx.platform.outbound,
        )
        return IntegrationType(
            row=row, revealed_secret=service.generated_secret(row.provider, connection, row.connection)
        )

    @strawberry.mutation(extensions=[requires(MANAGE, team=integration_team)])
    async def update_integration(
        self, info: Info[Context, None], id: uuid.UUID, input: UpdateIntegrationInput
    ) -> IntegrationType:  # noqa: A002
        ctx = info.context
        found = await service.visible_integration(ctx.session, ctx.principal, id)
        config = input.config
        row = await service.update_integration(
            ctx.session,
            ctx.principal,
            found,
            name=input.name,
            enabled=input.enabled,
            connection=_connection_input(found.provider, config.connection) if config and config.connection else None,
            subscriptions=_subscriptions(config.notification_settings) if config else None,
            delivery_policy=config.delivery_policy.value if config and config.delivery_policy else None,
            guard=ctx.platform.outbound,
        )
        return IntegrationType(row=row)

    @strawberry.mutation(
        extensions=[requires(MANAGE, team=integration_team)],
        description=(
            "Give a webhook a new signing secret made by the server; the answer's signingSecret is the only copy"
        ),
    )
    async def rotate_integration_secret(self, info: Info[Context, None], id: uuid.UUID) -> IntegrationType:  # noqa: A002
        ctx = info.context
        found = await service.visible_integration(ctx.session, ctx.principal, id)
        secret = await service.rotate_secret(ctx.session, found)
        return IntegrationType(row=found, revealed_secret=secret)

    @strawberry.mutation(extensions=[requires(MANAGE, team=integration_team)])
    async def delete_integration(self, info: Info[Context, None], id: uuid.UUID) -> bool:  # noqa: A002
        ctx = info.context
        return await service.delete_integration(
            ctx.session, await service.visible_integration(ctx.session, ctx.principal, id)
        )

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
