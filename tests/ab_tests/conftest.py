"""A/B test fixtures: a live server whose evaluator runs only on demand (tests call it)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from adaptive_engine import Adaptive
from tests.ab_tests.support import MIN_OBS
from tests.support import LiveServer, make_settings, private_postgres_database


@pytest.fixture(scope="session")
def ab_server(database: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """On PostgreSQL, a database of its own: two apps on one database would race on start-up work
    (built-in registrations, orphan recovery) that each expects to own."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(private_postgres_database()) if database else None
        settings = make_settings(
            tmp_path_factory.mktemp("abdata"),
            url,
            ab_test_evaluation_interval_s=0,
            ab_test_min_observations=MIN_OBS,
        )
        with LiveServer(settings) as live:
            yield live


@pytest.fixture
def ab_client(ab_server: LiveServer) -> Iterator[Adaptive]:
    with Adaptive(ab_server.base_url, api_key=ab_server.api_key) as sdk:
        yield sdk
