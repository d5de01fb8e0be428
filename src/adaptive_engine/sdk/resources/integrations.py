from __future__ import annotations

import builtins
from collections.abc import Mapping
from typing import Any

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL
from adaptive_engine.sdk.types import Integration, NotificationDeliveryPage, Provider, TestNotificationResult

PROVIDER_FIELDS = "name description capabilities allowedScopes"
INTEGRATION_FIELDS = """
  id teamId name capabilities enabled createdAt signingSecret
  config {
    provider deliveryPolicy
    connection {
      __typename
      ... on SlackConfig { webhookUrl botToken }
      ... on SmtpConfig { host port username fromEmail toEmails }
      ... on WebhookConfig { url method headers }
      ... on GitHubConfig { apiToken org repo }
    }
    notificationSettings { subscriptions { topicPattern scope targetFilter } }
  }
"""
# Values under these keys are data (header names, payload fields), not field names.
_OPAQUE = {"headers", "targetFilter"}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def wire(value: Any) -> Any:
    """An input given as a dict (snake_case or camelCase keys) or a pydantic model, in wire form."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(by_alias=True, exclude_none=True, mode="json")
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            name = _camel(str(key))
            name = "gitHub" if name == "github" else name
            out[name] = item if name in _OPAQUE else wire(item)
        return out
    if isinstance(value, (list, tuple)):
        return [wire(v) for v in value]
    return value


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name)


def _integration(data: dict[str, Any]) -> Integration:
    config = dict(data["config"])
    connection = {_snake(k): v for k, v in config["connection"].items() if k != "__typename"}
    config["connection"] = connection
    return Integration.model_validate({**data, "config": config})


class Integrations(Resource[C]):
    """A team's integrations (webhook, slack, smtp, github) and their notification subscriptions."""

    @operation
    def list_providers(self) -> Returns[list[Provider]]:
        """Providers an integration can use."""
        data = yield GraphQL(f"query ListProviders {{ providers {{ {PROVIDER_FIELDS} }} }}")
        return [Provider.model_validate(p) for p in data["providers"]]

    @operation
    def get_provider(self, name: str) -> Returns[Provider]:
        """One provider by name."""
        data = yield GraphQL(
            f"query DescribeProvider($name: String!) {{ provider(name: $name) {{ {PROVIDER_FIELDS} }} }}",
            {"name": name},
        )
        return Provider.model_validate(data["provider"])

    @operation
    def list(self, team: str) -> Returns[list[Integration]]:
        """Integrations of a team (id or key)."""
        data = yield GraphQL(
            f"query ListIntegrations($team: IdOrKey!) {{ integrations(team: $team) {{ {INTEGRATION_FIELDS} }} }}",
            {"team": team},
        )
        return [_integration(i) for i in data["integrations"]]

    @operation
    def get(self, id: str) -> Returns[Integration]:
        """An integration by id. Secrets are never returned (masked or left out)."""
        data = yield GraphQL(
            f"query DescribeIntegration($id: UUID!) {{ integration(id: $id) {{ {INTEGRATION_FIELDS} }} }}",
            {"id": str(id)},
        )
        return _integration(data["integration"])

    @operation
    def create(self, team: str, input: Mapping[str, Any]) -> Returns[Integration]:
        """Create an integration for ``team``. ``input``: {name, provider, config: {connection: {webhook|slack|smtp|
        github: {...}}, notification_settings: {subscriptions: [{topic_pattern, scope, target_filter}]},
        delivery_policy: "multishot"|"singleshot"}} (snake_case or camelCase keys). A webhook created without
        a ``secret`` gets one made by the server: the result's ``signing_secret``, returned this once."""
        query = (
            "mutation CreateIntegration($team: IdOrKey!, $input: CreateIntegrationInput!) {"
            f" createIntegration(team: $team, input: $input) {{ {INTEGRATION_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"team": team, "input": wire(input)})
        return _integration(data["createIntegration"])

    @operation
    def update(self, id: str, input: Mapping[str, Any]) -> Returns[Integration]:
        """Change an integration: {name?, enabled?, config?: {connection?, notification_settings?, delivery_policy?}}.
        A connection without its secret keeps the stored one."""
        query = (
            "mutation UpdateIntegration($id: UUID!, $input: UpdateIntegrationInput!) {"
            f" updateIntegration(id: $id, input: $input) {{ {INTEGRATION_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"id": str(id), "input": wire(input)})
        return _integration(data["updateIntegration"])

    @operation
    def rotate_secret(self, id: str) -> Returns[Integration]:
        """Give a webhook a new signing secret made by the server; the result's ``signing_secret`` is the only
        copy (the old secret stops signing at once)."""
        query = (
            "mutation RotateIntegrationSecret($id: UUID!) {"
            f" rotateIntegrationSecret(id: $id) {{ {INTEGRATION_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"id": str(id)})
        return _integration(data["rotateIntegrationSecret"])

    @operation
    def delete(self, id: str) -> Returns[bool]:
        """Delete an integration (and its delivery log)."""
        data = yield GraphQL("mutation DeleteIntegration($id: UUID!) { deleteIntegration(id: $id) }", {"id": str(id)})
        return bool(data["deleteIntegration"])

    @operation
    def test_notification(self, input: Mapping[str, Any]) -> Returns[TestNotificationResult]:
        """Send a test notification: {topic, scope: {user?: [ids], team?, organization?: {}, admin?: {}},
        payload: {job_update?: {...}}}. Returns at once with the event id and how many integrations it was queued
        for; each integration's ``deliveries`` log shows the outcome."""
        query = (
            "mutation TestNotification($input: TestNotificationInput!) {"
            " testNotification(input: $input) { eventId message } }"
        )
        data = yield GraphQL(query, {"input": wire(input)})
        return TestNotificationResult.model_validate(data["testNotification"])

    @operation
    def deliveries(
        self,
        id: str,
        first: int | None = 50,
        last: int | None = None,
        after: str | None = None,
        before: str | None = None,
        status: builtins.list[str] | None = None,
    ) -> Returns[NotificationDeliveryPage]:
        """The delivery log of an integration, newest first, in cursor pages (``first``/``after`` forwards,
        ``last``/``before`` backwards); ``status``: only PENDING, SENDING, DELIVERED or FAILED ones. Each
        delivery has its attempts (when, how long, the error, the backoff before the next one)."""
        if last is not None and first == 50:
            first = None
        query = (
            "query Deliveries($id: UUID!, $page: CursorPageInput, $status: [String!]) {"
            " notificationDeliveries(id: $id, page: $page, status: $status) {"
            " totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
            " nodes { id eventId topic status attempts maxAttempts nextAttemptAt lastError message"
            " createdAt deliveredAt"
            " attemptLog { startedAt durationMs error retryInS } } } }"
        )
        variables = {
            "id": str(id),
            "page": {"first": first, "last": last, "after": after, "before": before},
            "status": list(status) if status else None,
        }
        data = yield GraphQL(query, variables)
        return NotificationDeliveryPage.model_validate(data["notificationDeliveries"])
