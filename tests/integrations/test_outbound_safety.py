"""Outbound safety of notifications: URL and address checks (SSRF guard), timeouts, and size limits on what is
sent and on what is read back. Refusals at create/update change nothing; refusals at delivery fail the
delivery without retrying."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk.errors import ValidationError
from adaptive_engine.server.notify.events import emit
from adaptive_engine.server.notify.sender import SCOPE_KEY, EventScope
from tests.ab_tests.support import in_db
from tests.integrations.test_integrations import _job_payload, _wait_status, _webhook
from tests.support import LiveServer, make_settings

# 169.254.169.254 (the cloud metadata address) written as one hexadecimal number: not an address literal for the
# URL check, so only the check of resolved addresses at delivery can stop it.
METADATA_AS_NUMBER = "0xa9fea9fe"


def _notify(client: Adaptive, team: str) -> None:
    client.integrations.test_notification(
        {"topic": "job.completed", "scope": {"team": team}, "payload": _job_payload()}
    )


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/hook",
        "http://[::ffff:169.254.169.254]/hook",
        "http://[fd00:ec2::254]/hook",
        "http://0.0.0.0:8080/hook",
        "file:///etc/passwd",
        "gopher://127.0.0.1:25/x",
        "ftp://example.com/hook",
        "http://user:pw@example.com/hook",
        "http://example.com:99999/hook",
        "http://2852039166/hook",
        "http://127.1/hook",
        "http://0177.0.0.1/hook",
        "http://hook.example.com/\r\nX-Injected: 1",
        "http://hook .example.com/",
    ],
)
def test_refused_urls_create_and_change_nothing(admin: Adaptive, receiver, url: str) -> None:
    team = admin.teams.create(key=f"ssrf-{uuid.uuid4().hex[:6]}").key
    with pytest.raises(ValidationError):
        admin.integrations.create(team, _webhook(url))
    with pytest.raises(ValidationError):
        admin.integrations.create(
            team, {"name": "chat", "provider": "slack", "config": {"connection": {"slack": {"webhook_url": url}}}}
        )
    assert admin.integrations.list(team) == []
    hook = admin.integrations.create(team, _webhook(receiver.url))
    with pytest.raises(ValidationError):
        admin.integrations.update(hook.id, {"config": {"connection": {"webhook": {"url": url, "method": "POST"}}}})
    assert admin.integrations.get(hook.id).config.connection["url"] == receiver.url


def test_metadata_address_refused_at_delivery(admin: Adaptive, receiver) -> None:
    """A name that resolves to the metadata address passes the URL check; the delivery is refused (not
    retried, even multishot) and nothing is sent."""
    team = admin.teams.create(key=f"meta-{uuid.uuid4().hex[:6]}").key
    hook = admin.integrations.create(team, _webhook(f"http://{METADATA_AS_NUMBER}:{receiver.port}/hook"))
    _notify(admin, team)
    row = _wait_status(admin, hook.id, "FAILED").nodes[0]
    assert row.attempts == 1 and "169.254.169.254" in row.last_error and "metadata" in row.last_error


def test_private_receivers_allowed_by_default(admin: Adaptive, receiver) -> None:
    """The default allows loopback receivers, by name too: the connection goes to the resolved address and
    the request still names the host the URL gave."""
    team = admin.teams.create(key=f"lo-{uuid.uuid4().hex[:6]}").key
    hook = admin.integrations.create(team, _webhook(f"http://localhost:{receiver.port}/by-name"))
    _notify(admin, team)
    _wait_status(admin, hook.id, "DELIVERED")
    assert receiver.requests[0]["path"] == "/by-name"
    assert receiver.requests[0]["headers"]["host"] == f"localhost:{receiver.port}"


def test_hanging_receiver_times_out_and_is_retried_with_backoff(admin: Adaptive, receiver) -> None:
    team = admin.teams.create(key=f"hang-{uuid.uuid4().hex[:6]}").key
    hook = admin.integrations.create(team, _webhook(receiver.url))  # multishot: 3 attempts on this server
    receiver.delay_s = 3.0  # the server's timeout is 1 s
    _notify(admin, team)
    row = _wait_status(admin, hook.id, "FAILED").nodes[0]
    assert row.attempts == 3 and row.last_error == "timed out after 1 s"
    assert [a.error for a in row.attempt_log] == ["timed out after 1 s"] * 3
    # Each retry was scheduled after a backoff that doubles (0.05 s, then 0.1 s on this server); none after the last.
    assert [a.retry_in_s for a in row.attempt_log] == [0.05, 0.1, None]
    assert row.attempt_log[1].started_at >= row.attempt_log[0].started_at + 1 and row.next_attempt_at is None


def test_error_answer_is_read_only_up_to_a_limit(admin: Adaptive, receiver) -> None:
    """A receiver that answers an error with a body that never ends: the sender reads a few KiB (for the server
    log), hangs up and records the status, instead of downloading until the timeout."""
    team = admin.teams.create(key=f"big-{uuid.uuid4().hex[:6]}").key
    hook = admin.integrations.create(team, _webhook(receiver.url, policy="singleshot"))
    receiver.fail_with, receiver.endless = [500], True
    _notify(admin, team)
    row = _wait_status(admin, hook.id, "FAILED").nodes[0]
    # The log records the status only: a receiver's body never reaches those who read the delivery log.
    assert row.last_error == "HTTP 500 Internal Server Error"


def test_message_over_the_size_limit_is_refused(admin: Adaptive, receiver) -> None:
    team = admin.teams.create(key=f"size-{uuid.uuid4().hex[:6]}").key
    hook = admin.integrations.create(team, _webhook(receiver.url))
    payload = _job_payload()
    payload["job_update"]["job_input"] = {"blob": "x" * (300 * 1024)}  # the limit is 256 KiB
    with pytest.raises(ValidationError, match="exceeds the limit"):
        admin.integrations.test_notification({"topic": "job.completed", "scope": {"team": team}, "payload": payload})
    assert admin.integrations.deliveries(hook.id).nodes == [] and receiver.requests == []


def test_outbox_event_over_the_size_limit_fails_its_delivery(admin: Adaptive, notify_server, receiver) -> None:
    """Events that domains write to the outbox are not size-checked when emitted (a job's error can be long):
    the delivery refuses to send a message over the limit, without retrying, and nothing is sent."""
    team = admin.teams.create(key=f"outbox-{uuid.uuid4().hex[:6]}")
    hook = admin.integrations.create(team.key, _webhook(receiver.url, patterns=("custom.*",)))

    async def work(session) -> None:
        scope = EventScope(teams=[uuid.UUID(team.id)]).extras()
        await emit(session, "custom.big", payload={"blob": "x" * (300 * 1024), SCOPE_KEY: scope})

    in_db(notify_server, work)
    notify_server.app.state.events.wake()
    row = _wait_status(admin, hook.id, "FAILED").nodes[0]
    assert row.attempts == 1 and "exceeds the limit" in row.last_error and receiver.requests == []


# ------------------------------------------------------------------ ADAPTIVE_ALLOW_PRIVATE_NETWORKS=false
# The address checks do not touch the database: one server on SQLite is enough here.


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Adaptive]:
    settings = make_settings(
        tmp_path_factory.mktemp("strict"),
        None,
        allow_private_networks=False,
        notify_timeout_s=1.0,
        notify_backoff_s=0.05,
        notify_poll_interval_s=0.05,
        notify_max_attempts=3,
    )
    with LiveServer(settings) as live, Adaptive(live.base_url, api_key=live.api_key, max_retries=0) as client:
        yield client


def test_private_networks_refused_when_the_setting_says_so(strict: Adaptive, receiver) -> None:
    team = strict.teams.create(key=f"strict-{uuid.uuid4().hex[:6]}").key
    for url in (receiver.url, "http://10.0.0.1/hook", "http://[::1]:8080/hook"):
        with pytest.raises(ValidationError, match="ALLOW_PRIVATE_NETWORKS"):
            strict.integrations.create(team, _webhook(url))
    with pytest.raises(ValidationError, match="ALLOW_PRIVATE_NETWORKS"):
        strict.integrations.create(
            team,
            {
                "name": "mail",
                "provider": "smtp",
                "config": {
                    "connection": {
                        "smtp": {
                            "host": "127.0.0.1",
                            "port": 25,
                            "username": "",
                            "password": "",
                            "from_email": "a@example.com",
                            "to_emails": ["b@example.com"],
                        }
                    }
                },
            },
        )
    assert strict.integrations.list(team) == []
    # A name is resolved at delivery: localhost is refused there, and nothing reaches the receiver.
    hook = strict.integrations.create(team, _webhook(f"http://localhost:{receiver.port}/hook"))
    _notify(strict, team)
    row = _wait_status(strict, hook.id, "FAILED").nodes[0]
    assert row.attempts == 1 and "private or loopback" in row.last_error
    assert receiver.requests == []
