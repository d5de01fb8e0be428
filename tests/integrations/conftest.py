"""A server of our own for notification tests (both databases): short timeouts and backoff, and no other
server draining the same event outbox."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import nullcontext

import pytest

from adaptive_engine import Adaptive
from tests.integrations.receivers import HttpReceiver, SmtpReceiver
from tests.support import LiveServer, make_settings, private_postgres_database


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def notify_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with private_postgres_database() if request.param == "postgresql" else nullcontext(None) as url:
        settings = make_settings(
            tmp_path_factory.mktemp("notify"),
            url,
            notify_timeout_s=1.0,
            notify_backoff_s=0.05,
            notify_poll_interval_s=0.05,
            notify_max_attempts=3,
        )
        with LiveServer(settings) as live:
            yield live


@pytest.fixture
def admin(notify_server: LiveServer) -> Iterator[Adaptive]:
    with Adaptive(notify_server.base_url, api_key=notify_server.api_key, max_retries=0) as client:
        yield client


@pytest.fixture
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as running:
        yield running
