"""Readiness: whether this server can do its work now (``GET /ready``), as opposed to its process being up
(``GET /health``). Each check says what is missing, so an operator or a load balancer sees why it waits."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import select

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.engine import alembic_config
from adaptive_engine.server.inference.manager import BUNDLED
from adaptive_engine.server.platform import Platform


@dataclass
class Readiness:
    # check name -> what is not ready about it (absent when that check passes)
    not_ready: dict[str, str] = field(default_factory=dict)
    checked: list[str] = field(default_factory=list)

    @property
    def ready(self) -> bool:
        return not self.not_ready

    def as_json(self) -> dict[str, object]:
        return {
            "status": "ready" if self.ready else "not_ready",
            "checks": {name: self.not_ready.get(name, "ok") for name in self.checked},
        }


@lru_cache(maxsize=1)
def _migration_heads() -> frozenset[str]:
    return frozenset(ScriptDirectory.from_config(alembic_config()).get_heads())


async def check(platform: Platform) -> Readiness:
    result = Readiness()

    result.checked.append("started")
    if not platform.ready:
        result.not_ready["started"] = "the server is starting or stopping"

    result.checked.append("database")
    try:
        async with platform.engine.connect() as connection:
            current = await connection.run_sync(lambda sync: set(MigrationContext.configure(sync).get_current_heads()))
        missing = _migration_heads() - current
        if missing:
            result.not_ready["database"] = f"migrations not applied: {', '.join(sorted(missing))}"
    except Exception as error:  # an unreachable database is the answer, not a failure
        result.not_ready["database"] = f"unreachable: {type(error).__name__}: {error}".splitlines()[0]

    result.checked.append("job_runner")
    if not platform.job_runner.running:
        result.not_ready["job_runner"] = "not running"

    if platform.settings.bundled_models:
        result.checked.append("bundled_models")
        if "database" not in result.not_ready:
            async with platform.sessionmaker() as session:
                rows = (
                    await session.execute(
                        select(orm.Model.key, orm.Model.status, orm.Model.error).where(orm.Model.key.in_(BUNDLED))
                    )
                ).all()
            waiting = [
                f"{key} is {status}" + (f" ({error})" if error else "")
                for key, status, error in sorted(rows)
                if status != "ONLINE"
            ]
            if waiting:
                result.not_ready["bundled_models"] = "; ".join(waiting)
        else:
            result.not_ready["bundled_models"] = "unknown until the database is ready"
    return result


async def announce_when_ready(
    platform: Platform, url: str, say: Callable[[str], None] = print, interval_s: float = 0.5
) -> None:
    """Say ``ready: URL`` once every check passes (``serve`` runs this in the background)."""
    while not (await check(platform)).ready:
        await asyncio.sleep(interval_s)
    say(f"ready: {url}")
