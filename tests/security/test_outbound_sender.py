"""The notification sender's fairness: a receiver that takes 10 s to answer delays only its own deliveries, and
testNotification returns before any receiver answers. Both databases (the sender's queries run on each).

The asserts are orderings (what had happened when something else was seen), never timing thresholds.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import nullcontext
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from adaptive_engine import Adaptive
from tests.integrations.receivers import HttpReceiver
from tests.integrations.test_integrations import _job_payload, _wait_status, _webhook
from tests.support import LiveServer, free_port, make_settings, private_postgres_database


class SlowReceiver:
    """Answers each request 10 s after it arrived, or as soon as the test releases it."""

    def __init__(self) -> None:
        self.arrived = threading.Event()
        self.release = threading.Event()
        self.answered = False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.arrived.set()
                receiver.release.wait(10)
                receiver.answered = True
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> SlowReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def admin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Adaptive]:
    """A server whose delivery timeout (30 s) outlasts the slow receiver."""
    with private_postgres_database() if request.param == "postgresql" else nullcontext(None) as url:
        settings = make_settings(
            tmp_path_factory.mktemp("sender"), url, notify_timeout_s=30.0, notify_poll_interval_s=0.05
        )
        with LiveServer(settings) as live, Adaptive(live.base_url, api_key=live.api_key, max_retries=0) as client:
            yield client


@pytest.fixture
def slow() -> Iterator[SlowReceiver]:
    with SlowReceiver() as running:
        yield running


@pytest.fixture
def fast() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


def _team_with_hook(admin: Adaptive, url: str) -> tuple[str, str]:
    team = admin.teams.create(key=f"fair-{uuid.uuid4().hex[:6]}").key
    return team, admin.integrations.create(team, _webhook(url)).id


def _notify(admin: Adaptive, team: str) -> Any:
    return admin.integrations.test_notification(
        {"topic": "job.completed", "scope": {"team": team}, "payload": _job_payload()}
    )


def test_test_notification_returns_before_the_receiver_answers(admin: Adaptive, slow: SlowReceiver) -> None:
    team, hook = _team_with_hook(admin, slow.url)
    result = _notify(admin, team)
    assert not slow.answered  # returned while the receiver still holds the request (or before it got it)
    assert result.message.startswith("queued for 1 integration(s)") and uuid.UUID(result.event_id)
    assert slow.arrived.wait(30)
    slow.release.set()
    delivered = _wait_status(admin, hook, "DELIVERED").nodes[0]
    assert delivered.attempts == 1 and delivered.event_id == result.event_id


def test_a_slow_receiver_does_not_delay_another_team(admin: Adaptive, slow: SlowReceiver, fast: HttpReceiver) -> None:
    slow_team, slow_hook = _team_with_hook(admin, slow.url)
    fast_team, fast_hook = _team_with_hook(admin, fast.url)
    _notify(admin, slow_team)
    assert slow.arrived.wait(30)  # the slow receiver now holds its delivery for up to 10 s
    event = _notify(admin, fast_team).event_id
    fast.wait_for(1, timeout=60)
    assert not slow.answered  # the other team's delivery arrived while the slow one was still unanswered
    assert fast.json()["id"] == event
    assert _wait_status(admin, fast_hook, "DELIVERED").nodes[0].event_id == event
    slow.release.set()
    _wait_status(admin, slow_hook, "DELIVERED")
