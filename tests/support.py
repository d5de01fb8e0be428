"""Test support: real servers on loopback ports and private PostgreSQL databases."""

from __future__ import annotations

import asyncio
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import uvicorn

from adaptive_engine.server.app import create_app
from adaptive_engine.server.config import Settings
from adaptive_engine.server.connections import uvicorn_options

PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
ADMIN_KEY = "ae_test_admin_key"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def private_postgres_database() -> Iterator[str]:
    """A fresh database for one test session, dropped afterwards, so parallel runs never collide."""
    import asyncpg

    name = f"ae_test_{uuid.uuid4().hex[:12]}"

    async def admin(sql: str) -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_settings(data_dir: Path, database_url: str | None = None, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "admin_api_key": ADMIN_KEY,
        "bundled_models": False,
        "builtin_recipes": False,
    }
    if database_url:
        values["database_url"] = database_url
    values.update(overrides)
    return Settings(**values)


class LiveServer:
    """The real app under uvicorn in a background thread, on a free loopback port."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_app(settings)
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        settings.host, settings.port = "127.0.0.1", self.port  # jobs call the server back here
        self.api_key = settings.admin_api_key
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", **uvicorn_options(settings)
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def start(self, timeout: float = 120.0) -> LiveServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server failed to start")
            time.sleep(0.02)
        return self

    def settle(self) -> None:
        """Wait until what this server queued for the database (served completions) is committed: every
        GraphQL request waits for that first, so one trivial query is the barrier."""
        r = httpx.post(
            f"{self.base_url}/api/graphql",
            json={"query": "{ __typename }"},
            headers={"Authorization": f"Bearer {self.api_key}"},
            timeout=60,
        )
        r.raise_for_status()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def process_tree(pid: int) -> set[int]:
    """``pid`` and every process below it, as this machine numbers them (a sandboxed job sees other
    numbers: it has a PID namespace of its own)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        tree.add(current)
        todo.extend(children.get(current, []))
    return tree


@contextmanager
def counting_statements(server: LiveServer, requests_only: bool = False) -> Iterator[list[str]]:
    """The SQL statements the server's engine runs inside the block (the server runs in this process). With
    ``requests_only``, only those run while serving a request: not the server's background work (A/B test
    evaluation, the job runner, housekeeping), which runs whenever its period comes."""
    from sqlalchemy import event

    from adaptive_engine.server.observability.logs import request_id

    engine = server.app.state.engine.sync_engine
    seen: list[str] = []

    def record(_conn, _cursor, statement, _params, _context, _many) -> None:
        if not requests_only or request_id.get() is not None:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)
