"""GraphQL of a team's integrations: their configuration (secrets masked), creation, changes and removal."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import requires
from adaptive_engine.server.domains.integrations import service
from adaptive_engine.server.domains.integrations.graphql.providers import DeliveryScope, IntegrationCapability
from adaptive_engine.server.domains.integrations.records import IntegrationRecord
from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.scalars import JSON, IdOrKey
from adaptive_engine.server.notify import providers
from adaptive_engine.server.timestamps import epoch

MANAGE = "integration:manage"


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


_CONFIGS = {"slack": SlackConfig, "smtp": SmtpConfig, "webhook": WebhookConfig}


@strawberry.type(name="Integration")
class IntegrationType:
    signing_secret: str | None = strawberry.field(
        description="The webhook's signing secret, made by the server: returned only by createIntegration (when "
        "no secret was given) and rotateIntegrationSecret; null everywhere else"
    )
    id: uuid.UUID
    team_id: uuid.UUID
    name: str
    capabilities: list[IntegrationCapability]
    config: IntegrationConfigType
    enabled: bool
    created_at: int


def to_gql_integration(integration: IntegrationRecord, revealed_secret: str | None = None) -> IntegrationType:
    """``revealed_secret``: only in the answer of the mutation that made the secret (create without one, rotate)."""
    subscriptions = [
        SubscriptionType(
            topic_pattern=s["topic_pattern"], scope=DeliveryScope(s["scope"]), target_filter=s.get("target_filter")
        )
        for s in integration.subscriptions
    ]
    connection: Any = _CONFIGS.get(integration.provider, GitHubConfig)(**integration.public_connection)
    return IntegrationType(
        signing_secret=revealed_secret,
        id=integration.id,
        team_id=integration.team_id,
        name=integration.name,
        capabilities=[IntegrationCapability(c) for c in integration.capabilities],
        config=IntegrationConfigType(
            provider=integration.provider,
            connection=connection,
            notification_settings=NotificationSettingsType(subscriptions=subscriptions),
            delivery_policy=DeliveryPolicy(integration.delivery_policy),
        ),
        enabled=integration.enabled,
        created_at=epoch(integration.created_at) or 0,
    )


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


_CONNECTION_KEYS = {"slack": "slack", "smtp": "smtp", "webhook": "webhook", "git_hub": "github"}


def _connection_input(provider: str | None, given: ConnectionConfigInput) -> dict[str, Any]:
    chosen = [(name, getattr(given, name)) for name in _CONNECTION_KEYS if getattr(given, name) is not None]
    if len(chosen) != 1:
        raise InvalidInput("give exactly one connection: slack, smtp, webhook or gitHub")
    name, value = chosen[0]
    if provider is not None and _CONNECTION_KEYS[name] != providers.provider(provider).name:
        raise InvalidInput(f"provider '{provider}' takes a {providers.provider(provider).name} connection, not {name}")
    return {k: v for k, v in vars(value).items()}


def _subscriptions(settings: NotificationSettingsInput | None) -> list[dict] | None:
    if settings is None:
        return None
    return [
        {"topic_pattern": s.topic_pattern, "scope": s.scope.value, "target_filter": s.target_filter}
        for s in settings.subscriptions
    ]


async def integration_team(ctx: Context, kwargs: dict[str, Any]) -> uuid.UUID:
    """Guard target of fields taking an integration id: its team (NOT_FOUND when the caller is not in it)."""
    return (await service.get_integration(ctx.session, ctx.principal, kwargs["id"])).team_id


@strawberry.type
class IntegrationsQuery:
    @strawberry.field(extensions=[requires(MANAGE, team="team")])
    async def integrations(self, info: Info[Context, None], team: IdOrKey) -> list[IntegrationType]:
        ctx = info.context
        return [to_gql_integration(r) for r in await service.list_integrations(ctx.session, team)]

    @strawberry.field(extensions=[requires(MANAGE, team=integration_team)])
    async def integration(self, info: Info[Context, None], id: uuid.UUID) -> IntegrationType | None:  # noqa: A002
        ctx = info.context
        return to_gql_integration(await service.get_integration(ctx.session, ctx.principal, id))


@strawberry.type
class IntegrationsMutation:
    @strawberry.mutation(extensions=[requires(MANAGE, team="team")])
    async def create_integration(
        self, info: Info[Context, None], team: IdOrKey, input: CreateIntegrationInput
    ) -> IntegrationType:
        ctx = info.context
        config = input.config
        created, secret = await service.create_integration(
            ctx.session,
            ctx.principal,
            team,
            name=input.name,
            provider=input.provider,
            connection=_connection_input(input.provider, config.connection),
            subscriptions=_subscriptions(config.notification_settings),
            delivery_policy=config.delivery_policy.value if config.delivery_policy else None,
            guard=ctx.platform.outbound,
        )
        return to_gql_integration(created, revealed_secret=secret)

    @strawberry.mutation(extensions=[requires(MANAGE, team=integration_team)])
    async def update_integration(
        self, info: Info[Context, None], id: uuid.UUID, input: UpdateIntegrationInput
    ) -> IntegrationType:  # noqa: A002
        ctx = info.context
        found = await service.get_integration(ctx.session, ctx.principal, id)
        config = input.config
        updated = await service.update_integration(
            ctx.session,
            ctx.principal,
            id,
            name=input.name,
            enabled=input.enabled,
            connection=_connection_input(found.provider, config.connection) if config and config.connection else None,
            subscriptions=_subscriptions(config.notification_settings) if config else None,
            delivery_policy=config.delivery_policy.value if config and config.delivery_policy else None,
            guard=ctx.platform.outbound,
        )
        return to_gql_integration(updated)

    @strawberry.mutation(
        extensions=[requires(MANAGE, team=integration_team)],
        description="Give a webhook a new signing secret made by the server; the answer's signingSecret is the "
        "only copy",
    )
    async def rotate_integration_secret(self, info: Info[Context, None], id: uuid.UUID) -> IntegrationType:  # noqa: A002
        ctx = info.context
        rotated, secret = await service.rotate_secret(ctx.session, ctx.principal, id)
        return to_gql_integration(rotated, revealed_secret=secret)

    @strawberry.mutation(extensions=[requires(MANAGE, team=integration_team)])
    async def delete_integration(self, info: Info[Context, None], id: uuid.UUID) -> bool:  # noqa: A002
        ctx = info.context
        return await service.delete_integration(ctx.session, ctx.principal, id)
