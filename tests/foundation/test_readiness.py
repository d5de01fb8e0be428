"""/health says the process is up; /ready says whether it can work, and what is missing while it cannot."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.session import unit_of_work
from adaptive_engine.server.platform import platform_of
from tests.support import LiveServer, make_settings, private_postgres_database


@pytest.fixture
def own_server(database: str | None, tmp_path: Path) -> Iterator[LiveServer]:
    """A server, and database, of this test alone (it breaks what it checks)."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(private_postgres_database()) if database else None
        with LiveServer(make_settings(tmp_path, url)) as live:
            yield live


def _run(live: LiveServer, coroutine):
    platform = platform_of(live.app)
    return asyncio.run_coroutine_threadsafe(coroutine, platform.job_runner.loop).result(timeout=60)


def test_ready_on_the_shared_server(server: LiveServer) -> None:
    health = httpx.get(f"{server.base_url}/health")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    ready = httpx.get(f"{server.base_url}/ready")  # no key: public, like /health
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"started": "ok", "database": "ok", "job_runner": "ok"}}


def test_not_ready_says_what_is_missing(own_server: LiveServer) -> None:
    platform = platform_of(own_server.app)
    url = f"{own_server.base_url}/ready"
    assert httpx.get(url).status_code == 200

    async def unmigrate() -> str:
        async with platform.engine.begin() as connection:
            head = (await connection.execute(text("SELECT version_num FROM alembic_version LIMIT 1"))).scalar_one()
            await connection.execute(text("DELETE FROM alembic_version WHERE version_num = :v"), {"v": head})
        return head

    async def remigrate(head: str) -> None:
        async with platform.engine.begin() as connection:
            await connection.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": head})

    head = _run(own_server, unmigrate())
    answer = httpx.get(url)
    assert answer.status_code == 503
    assert answer.json()["status"] == "not_ready"
    assert answer.json()["checks"]["database"] == f"migrations not applied: {head}"
    _run(own_server, remigrate(head))
    assert httpx.get(url).status_code == 200

    _run(own_server, platform.job_runner.stop())
    answer = httpx.get(url)
    assert (answer.status_code, answer.json()["checks"]["job_runner"]) == (503, "not running")
    _run(own_server, platform.job_runner.start())
    assert httpx.get(url).status_code == 200


def test_bundled_models_not_online_keep_it_not_ready(own_server: LiveServer) -> None:
    platform = platform_of(own_server.app)
    url = f"{own_server.base_url}/ready"
    # As a server with bundled models on sees them while one failed to load: rows written as the manager does.
    platform.settings.bundled_models = True

    async def bundled_rows(status: str) -> None:
        async with unit_of_work(platform.sessionmaker) as session:
            session.add(
                orm.Model(
                    key="all-minilm-l6-v2",
                    name="all-MiniLM-L6-v2",
                    kind="embedding",
                    provider="local",
                    source={"bundled": "all-minilm-l6-v2"},
                    status=status,
                    error="weights missing" if status == "ERROR" else None,
                )
            )

    try:
        _run(own_server, bundled_rows("ERROR"))
        answer = httpx.get(url)
        assert answer.status_code == 503
        assert answer.json()["checks"]["bundled_models"] == "all-minilm-l6-v2 is ERROR (weights missing)"
        assert answer.json()["checks"]["database"] == "ok"
    finally:
        platform.settings.bundled_models = False
    assert "bundled_models" not in httpx.get(url).json()["checks"]
