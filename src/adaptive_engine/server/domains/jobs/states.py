"""Every change of a job's state, in one place. The jobs service queues a job (PENDING) and cancels it
(CANCELED); the runner (server/jobs/runner.py) claims it (RUNNING), records its handle and how it ended
(COMPLETED, FAILED) through :class:`JobTransitions`, which the app hands it as its ``JobStates``.

Claiming and finishing are compare-and-set updates: several replicas may share the database, and a job
canceled meanwhile stays canceled.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.keys import (
    display_prefix,
    generate_api_key,
    hash_api_key,
)
from adaptive_engine.server.db.models import ApiKey, ComputePool, Job, JobArtifact
from adaptive_engine.server.db.session import rowcount
from adaptive_engine.server.domains.compute_pools.service import job_gpus
from adaptive_engine.server.notify.sender import announce_job_end
from adaptive_engine.server.observability.metrics import Metrics
from adaptive_engine.server.timestamps import utcnow

FINISHED = ("COMPLETED", "FAILED", "CANCELED")


def cancel(job: Job) -> None:
    """PENDING or RUNNING -> CANCELED (the caller checked it is not finished); its credential is dropped."""
    job.status = "CANCELED"
    job.ended_at = utcnow()
    job.secret = None


async def _has_room(session: AsyncSession, pool: ComputePool, job: Job) -> bool:
    running = await session.execute(
        select(func.count(), func.coalesce(func.sum(Job.num_gpus), 0)).where(
            Job.compute_pool_id == pool.id, Job.status == "RUNNING"
        )
    )
    count, gpus = running.one()
    slots = sum(g.job_slots for g in pool.harmony_groups if g.status == "ONLINE")
    return count < slots and int(gpus) + job.num_gpus <= job_gpus(pool)


class JobTransitions:
    """The runner's ``JobStates``: each call works in the caller's transaction. Counts each move in the
    metrics (adaptive_jobs_total by kind and state; a finished job's run time, when this process started it)."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics or Metrics()
        self._started: dict[uuid.UUID, tuple[str, float]] = {}

    async def claim(self, session: AsyncSession, job: Job, pool: ComputePool, runner_id: str) -> str | None:
        if not await _has_room(session, pool, job):
            return None
        claimed = await session.execute(
            update(Job)
            .where(Job.id == job.id, Job.status == "PENDING")
            .values(status="RUNNING", runner_id=runner_id, executor=pool.executor, started_at=utcnow())
        )
        if rowcount(claimed) != 1:
            return None
        self._started[job.id] = (job.kind, time.monotonic())
        self.metrics.jobs(job.kind, "RUNNING").inc()
        key = generate_api_key()
        session.add(
            ApiKey(
                user_id=job.created_by_id,
                name=f"job {job.id}",
                prefix=display_prefix(key),
                key_hash=hash_api_key(key),
                job_id=job.id,
            )
        )
        await session.flush()
        return key

    async def launched(self, session: AsyncSession, job_id: uuid.UUID, handle: str) -> None:
        await session.execute(update(Job).where(Job.id == job_id).values(handle=handle))

    async def finish(self, session: AsyncSession, job_id: uuid.UUID, status: str, error: str | None) -> None:
        # A finished job needs its credential (a hub token) no more.
        values: dict[str, Any] = {"status": status, "ended_at": utcnow(), "error": error, "secret": None}
        if status == "COMPLETED":
            values["progress"] = 1.0
        finished = await session.execute(update(Job).where(Job.id == job_id, Job.status == "RUNNING").values(**values))
        if rowcount(finished) == 1:
            await announce_job_end(session, job_id, status, error)
            kind, started = self._started.pop(job_id, ("unknown", None))
            self.metrics.jobs(kind, status).inc()
            if started is not None:
                self.metrics.job_duration(kind, status).observe(time.monotonic() - started)
        await session.execute(
            update(JobArtifact)
            .where(JobArtifact.job_id == job_id, JobArtifact.status.in_(("PENDING", "PROCESSING")))
            .values(status="ERROR")
        )
        await self.revoke_keys(session, job_id)

    def canceled(self, job_id: uuid.UUID, kind: str) -> None:
        """A cancel through the API is committed: counted like the runner's own moves (with its run time when
        this process started it)."""
        _, started = self._started.pop(job_id, (kind, None))
        self.metrics.jobs(kind, "CANCELED").inc()
        if started is not None:
            self.metrics.job_duration(kind, "CANCELED").observe(time.monotonic() - started)

    async def revoke_keys(self, session: AsyncSession, job_id: uuid.UUID) -> None:
        await session.execute(
            update(ApiKey).where(ApiKey.job_id == job_id, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow())
        )
