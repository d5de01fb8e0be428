"""Shared fixtures. ``server`` runs every test that uses it on SQLite and on PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from adaptive_engine import Adaptive
from tests.support import LiveServer, make_settings, private_postgres_database

# The fake upstream provider and the gateway world (its `gw` fixture) serve tests in several folders.
pytest_plugins = ["tests.inference.fixtures", "tests.inference.gateway_world"]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    with private_postgres_database() as url:
        yield url


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str | None:
    """The database URL under test (None: the default SQLite file in the data dir)."""
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return None


@pytest.fixture(scope="session")
def server(database: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(tmp_path_factory.mktemp("data"), database)
    with LiveServer(settings) as live:
        yield live


@pytest.fixture
def client(server: LiveServer) -> Iterator[Adaptive]:
    with Adaptive(server.base_url, api_key=server.api_key) as sdk:
        yield sdk


@pytest.fixture
def unique() -> str:
    """A short unique suffix for keys, since servers are shared across tests."""
    import uuid

    return uuid.uuid4().hex[:8]
