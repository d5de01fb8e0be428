"""The official adaptive-sdk client against our server: users, teams, roles, permissions, use case sharing
and integrations (with a real delivery to a local HTTP receiver)."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid

import pytest

from adaptive_engine import Adaptive
from tests.integrations.receivers import HttpReceiver

adaptive_sdk = pytest.importorskip("adaptive_sdk")
from adaptive_sdk.graphql_client.input_types import (  # noqa: E402
    ConnectionConfigInputSlack,
    ConnectionConfigInputWebhook,
    JobUpdatePayload,
    NotificationPayload,
    SubscriptionInput,
)


@pytest.fixture
def official(server):
    return adaptive_sdk.Adaptive(base_url=server.base_url, api_key=server.api_key)


def test_teams_roles_permissions(official, unique: str) -> None:
    team = official.teams.create(key=f"oteam-{unique}", name="Official team")
    assert team.key == f"oteam-{unique}" and team.name == "Official team"
    assert f"oteam-{unique}" in [t.key for t in official.teams.list()]
    role = official.roles.create(key=f"orole-{unique}", permissions=["use_case:read", "feedback:write"])
    assert role.name == f"orole-{unique}" and role.permissions == ["use_case:read", "feedback:write"]
    assert {"admin", "editor", "viewer", f"orole-{unique}"} <= {r.key for r in official.roles.list()}
    permissions = official.permissions.list()
    assert "use_case:share" in permissions and "admin" in permissions
    with pytest.raises(Exception, match="unknown permission"):
        official.roles.create(key=f"bad-{unique}", permissions=["nope:never"])


def test_users(official, unique: str) -> None:
    official.teams.create(key=f"ot1-{unique}")
    official.teams.create(key=f"ot2-{unique}")
    email = f"off-{unique}@example.com"
    user = official.users.create(email=email, name="Off", teams_with_role=[(f"ot1-{unique}", "editor")])
    assert user.email == email and [(t.team.key, t.role.key) for t in user.teams] == [(f"ot1-{unique}", "editor")]
    assert email in [u.email for u in official.users.list()]
    member = official.users.add_to_team(email=email, team=f"ot2-{unique}", role="viewer")
    assert member.team.key == f"ot2-{unique}" and member.role.key == "viewer"
    assert {t.team.key for t in member.user.teams} == {f"ot1-{unique}", f"ot2-{unique}"}
    after = official.users.remove_from_team(email=email, team=f"ot1-{unique}")
    assert [t.team.key for t in after.teams] == [f"ot2-{unique}"]
    assert official.users.me().email == "admin@localhost"
    official.users.delete(email)
    assert email not in [u.email for u in official.users.list()]


def test_share_and_unshare(official, unique: str) -> None:
    official.use_cases.create(key=f"osh-{unique}")
    official.teams.create(key=f"osh-team-{unique}")
    shared = official.use_cases.share(f"osh-{unique}", team=f"osh-team-{unique}", role="viewer")
    assert {(s.team.key, s.role.key, s.is_owner) for s in shared.shares} == {
        ("default", "admin", True),
        (f"osh-team-{unique}", "viewer", False),
    }
    changed = official.use_cases.share(f"osh-{unique}", team=f"osh-team-{unique}", role="editor")
    assert (f"osh-team-{unique}", "editor") in {(s.team.key, s.role.key) for s in changed.shares}
    unshared = official.use_cases.unshare(f"osh-{unique}", team=f"osh-team-{unique}")
    assert [s.team.key for s in unshared.shares] == ["default"]


def test_integrations(official, server, unique: str) -> None:
    providers = {p.name for p in official.integrations.list_providers()}
    assert {"webhook", "slack", "smtp", "github"} <= providers
    assert official.integrations.get_provider("webhook").capabilities[0].value == "NOTIFICATION_CHANNEL"
    team = official.teams.create(key=f"oint-{unique}").key
    with HttpReceiver() as receiver:
        created = official.integrations.create(
            team=team,
            name="hook",
            provider="webhook",
            connection=ConnectionConfigInputWebhook(url=receiver.url, method="POST", headers={"X-Token": "t0ken"}),
            subscriptions=[SubscriptionInput(topicPattern="job.*", scope="TEAM")],
            delivery_policy="multishot",
        )
        assert created.config.provider == "webhook" and created.config.connection.url == receiver.url
        assert created.config.connection.headers == {"X-Token": "********"}
        assert created.config.delivery_policy.value == "multishot"
        assert official.integrations.get(created.id).name == "hook"
        assert [i.id for i in official.integrations.list(team)] == [created.id]

        def notify() -> str:
            return official.integrations.test_notification(
                topic="job.completed",
                payload=NotificationPayload(
                    jobUpdate=JobUpdatePayload(
                        jobId=str(uuid.uuid4()),
                        jobName="sft",
                        jobStatus="DONE",
                        jobProgress=1.0,
                        jobStartedAt=1700000000,
                        useCaseId=str(uuid.uuid4()),
                        jobInput={"lr": 0.1},
                        jobOutputs=[],
                    )
                ),
                scope_team=team,
            ).message

        assert "queued for 1 integration(s)" in notify()  # sent in the background; the receiver sees it
        receiver.wait_for(1)
        request = receiver.requests[0]
        assert request["headers"]["x-token"] == "t0ken" and "x-adaptive-signature" in request["headers"]
        assert json.loads(request["body"])["payload"]["jobUpdate"]["jobName"] == "sft"
        # The official client cannot pass a signing secret nor ask for the one the server made: rotating it
        # (rotateIntegrationSecret, here through our SDK) hands a new one over, and deliveries are signed with it.
        with Adaptive(server.base_url, api_key=server.api_key) as ours:
            secret = ours.integrations.rotate_secret(created.id).signing_secret
        assert "queued for 1 integration(s)" in notify()  # sent in the background; the receiver sees it
        receiver.wait_for(2)
        signed = receiver.requests[1]
        timestamp = signed["headers"]["x-adaptive-timestamp"].encode()
        digest = hmac.new(secret.encode(), timestamp + b"." + signed["body"], hashlib.sha256).hexdigest()
        assert signed["headers"]["x-adaptive-signature"] == f"sha256={digest}"

        updated = official.integrations.update(
            created.id,
            name="renamed",
            enabled=False,
            subscriptions=[SubscriptionInput(topicPattern="ab_campaign.*", scope="TEAM")],
        )
        assert updated.name == "renamed" and not updated.enabled
        assert updated.config.notification_settings.subscriptions[0].topic_pattern == "ab_campaign.*"
        slack = official.integrations.create(
            team=team,
            name="chat",
            provider="slack",
            connection=ConnectionConfigInputSlack(webhook_url=f"{receiver.url}/services/secret-path"),
        )
        assert "secret-path" not in slack.config.connection.webhook_url
        assert official.integrations.delete(created.id) is True
        assert [i.name for i in official.integrations.list(team)] == ["chat"]
