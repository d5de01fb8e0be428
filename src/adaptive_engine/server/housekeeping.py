"""Housekeeping: a periodic pass that keeps a long-running server's storage bounded.

Each pass removes chunked uploads idle for ``upload_expiry_hours`` (their parts included), temporary files
untouched as long (a crash left them), and the finished rows of the notification tables older than
``event_retention_days``, and the usage roll-ups' minute rows older than two days. Every kind of cleanup is one short
transaction deleting at most ``BATCH`` rows, so a backlog is worked off over several passes without long
locks; a failing kind is logged and the others still run. Several replicas may run it: a row is deleted
once, whoever gets it.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adaptive_engine.server.config import Settings
from adaptive_engine.server.db.session import unit_of_work
from adaptive_engine.server.domains.datasets import uploads
from adaptive_engine.server.domains.usage import rollups as usage_rollups
from adaptive_engine.server.jobs.storage import FileStore
from adaptive_engine.server.notify import retention
from adaptive_engine.server.periodic import PeriodicService
from adaptive_engine.server.timestamps import utcnow

log = logging.getLogger("adaptive_engine.housekeeping")

BATCH = 2000
TEMP_MIN_IDLE_S = 3600


@dataclass
class Report:
    """Rows (or folders) each kind of cleanup removed in one pass; the kinds that failed."""

    uploads: int = 0
    stray_part_folders: int = 0
    stale_temps: int = 0
    deliveries: int = 0
    events: int = 0
    usage_minutes: int = 0
    failed: list[str] = field(default_factory=list)


async def run_pass(
    sessionmaker: async_sessionmaker[AsyncSession],
    store: FileStore,
    settings: Any,
    now: datetime | None = None,
    limit: int = BATCH,
) -> Report:
    """One housekeeping pass with the server's ``settings`` (expiry and retention); never raises."""
    now = now or utcnow()
    report = Report()

    async def step(kind: str, work: Callable[[AsyncSession], Awaitable[int]]) -> None:
        try:
            async with unit_of_work(sessionmaker) as session:
                setattr(report, kind, await work(session))
        except Exception:  # one failing cleanup must not stop the others, nor the server
            log.exception("housekeeping: removing old %s failed", kind.replace("_", " "))
            report.failed.append(kind)

    if settings.upload_expiry_hours > 0:
        idle_since = now - timedelta(hours=settings.upload_expiry_hours)
        await step("uploads", lambda s: uploads.remove_idle(s, store, idle_since, limit))
        await step("stray_part_folders", lambda s: uploads.remove_stray_parts(s, store, limit))
        # Temporaries idle as long as an upload may be (an hour at least): a crash left them; one in use is
        # being written to, or is moved into place within moments of its last write.
        try:
            cutoff = min(idle_since, now - timedelta(seconds=TEMP_MIN_IDLE_S))
            report.stale_temps = store.remove_stale_temps(cutoff.timestamp(), limit)
        except OSError:
            log.exception("housekeeping: removing stale temporary files failed")
            report.failed.append("stale_temps")
    if settings.event_retention_days > 0:
        before = now - timedelta(days=settings.event_retention_days)
        # Deliveries first: an event goes only once none of its deliveries waits any more.
        await step("deliveries", lambda s: retention.prune_deliveries(s, before, limit))
        await step("events", lambda s: retention.prune_events(s, before, limit))
    # The usage roll-ups' minute rows (hours and days are kept).
    await step("usage_minutes", lambda s: usage_rollups.prune_minutes(s, now))
    if (
        report.uploads
        or report.stray_part_folders
        or report.stale_temps
        or report.deliveries
        or report.events
        or report.usage_minutes
    ):
        log.info("housekeeping removed %s", report)
    return report


class HousekeepingService(PeriodicService):
    """``run_pass`` every ``housekeeping_interval_s`` (0: never); ``run_once`` for tests."""

    name = "housekeeping"

    def __init__(self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], store: FileStore) -> None:
        super().__init__(settings.housekeeping_interval_s)
        self.settings = settings
        self._sessionmaker = sessionmaker
        self._store = store

    async def _pass(self) -> Report:
        return await run_pass(self._sessionmaker, self._store, self.settings)
