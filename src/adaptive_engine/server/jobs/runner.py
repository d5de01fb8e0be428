"""The job runner: a background service that starts queued jobs when their pool has room, watches
running ones, and records how they end.

Several server replicas may share a database: a job is claimed with a conditional update, so only one
replica starts it, and each replica watches the jobs it started (runner_id). At start, jobs this
runner was running and cannot reattach to are marked FAILED with the reason.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import socket
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.recipe.context import (
    ENV_API_KEY,
    ENV_BASE_URL,
    ENV_CLIENT_TIMEOUT,
    ENV_EXECUTOR,
    ENV_JOB_ID,
    ENV_JOB_SECRET,
    ENV_NUM_GPUS,
    ENV_USE_CASE,
    ENV_WORK_DIR,
)
from adaptive_engine.server.auth.keys import display_prefix, generate_api_key, hash_api_key
from adaptive_engine.server.db.models import ApiKey, ComputePool, Job, JobArtifact
from adaptive_engine.server.db.session import after_commit, unit_of_work
from adaptive_engine.server.notify.sender import announce_job_end
from adaptive_engine.server.domains.compute_pools.service import detect_machine, ensure_pools, job_gpus
from adaptive_engine.server.jobs.executors.base import Executor, ExecState, LaunchSpec
from adaptive_engine.server.jobs.executors.local import LocalExecutor
from adaptive_engine.server.periodic import cancel_task
from adaptive_engine.server.timestamps import utcnow

log = logging.getLogger("adaptive_engine.jobs")
LOG_TAIL_LINES = 30
RESTART_REASON = "the server restarted while the job was running; its process was lost"


def last_error_line(tail: str) -> str | None:
    for line in reversed(tail.splitlines()):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*:", line) or line.startswith("RecipeError:"):
            return line.strip()
    return None


class JobRunner:
    def __init__(self) -> None:
        self.executors: dict[str, Executor] = {}
        self.runner_id = ""
        # job id -> (pool executor name, handle) for the runs this process watches
        self.tracked: dict[uuid.UUID, tuple[str, str]] = {}
        # GPU indices given to the local runs (the job partition is the ranks after the inference partition)
        self.gpu_ranks: dict[uuid.UUID, list[int]] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._background: set[asyncio.Task[None]] = set()
        self.app: Any = None

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self, app: Any) -> None:
        self.app = app
        self._loop_ref = asyncio.get_running_loop()
        settings = app.state.settings
        self.jobs_dir = settings.data_dir.resolve() / "jobs"
        self.runner_id = f"{socket.gethostname()}:{hashlib.sha1(str(settings.data_dir.resolve()).encode()).hexdigest()[:12]}"
        self.executors["local"] = LocalExecutor(on_exit=self.wake)
        if settings.ray_address:
            from adaptive_engine.server.jobs.executors.ray import RayExecutor

            self.executors["ray"] = RayExecutor(settings.ray_address)
        machine = await asyncio.to_thread(detect_machine)
        async with unit_of_work(app.state.sessionmaker) as session:
            await ensure_pools(session, settings, machine)
            await self._recover(session)
        self._task = asyncio.create_task(self._loop(), name="job-runner")

    async def stop(self) -> None:
        await cancel_task(self._task)
        # Local runs cannot outlive the server: stop them and record why.
        for job_id, (executor, handle) in list(self.tracked.items()):
            if executor == "local":
                await self.executors[executor].cancel(handle)
                async with unit_of_work(self.app.state.sessionmaker) as session:
                    await self._finish(session, job_id, "FAILED", "the server stopped while the job was running")
                self.tracked.pop(job_id, None)
        for executor in self.executors.values():
            await executor.close()

    def wake(self) -> None:
        self._wake.set()

    @staticmethod
    def wake_after_commit(session: Any, state: Any) -> None:
        """Start a job created in ``session`` as soon as its row is committed, not at the next poll."""
        runner = getattr(state, "job_runner", None)
        if runner is not None:
            after_commit(session, runner.wake)

    async def _loop(self) -> None:
        interval = self.app.state.settings.job_poll_interval_s
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the runner must survive a bad round
                log.exception("job runner round failed")
            try:
                await asyncio.wait_for(self._wake.wait(), interval)
            except asyncio.TimeoutError:
                pass
            self._wake.clear()

    # -- one round ------------------------------------------------------------------------------------
    async def run_once(self) -> None:
        async with self._lock:
            await self._watch()
            await self._start_pending()

    async def _recover(self, session: AsyncSession) -> None:
        rows = await session.execute(select(Job).where(Job.status == "RUNNING", Job.runner_id == self.runner_id))
        for job in rows.scalars():
            executor = self.executors.get(job.executor or "")
            if executor is not None and executor.reattachable and job.handle:
                self.tracked[job.id] = (job.executor, job.handle)  # type: ignore[assignment]
                continue
            await self._finish(session, job.id, "FAILED", RESTART_REASON)

    async def _watch(self) -> None:
        for job_id, (name, handle) in list(self.tracked.items()):
            executor = self.executors[name]
            async with unit_of_work(self.app.state.sessionmaker) as session:
                job = await session.get(Job, job_id)
                if job is None or job.status != "RUNNING":
                    # Canceled (or deleted) elsewhere: stop the run.
                    self.tracked.pop(job_id, None)
                    self.gpu_ranks.pop(job_id, None)
                    await executor.cancel(handle)
                    await self._revoke_keys(session, job_id)
                    continue
                try:
                    state = await executor.poll(handle)
                except Exception as exc:  # noqa: BLE001
                    log.warning("polling job %s failed: %s", job_id, exc)
                    continue
                if not state.finished:
                    continue
                self.tracked.pop(job_id, None)
                self.gpu_ranks.pop(job_id, None)
                tail = await executor.log_tail(handle, self.jobs_dir / str(job_id), LOG_TAIL_LINES)
                await self._record_end(session, job, state, tail)

    async def _record_end(self, session: AsyncSession, job: Job, state: ExecState, tail: str) -> None:
        if state.state == "SUCCEEDED":
            await self._finish(session, job.id, "COMPLETED", None)
            return
        reason = last_error_line(tail) or state.message or "the job failed"
        error = f"{reason}\n--- last lines of the log ---\n{tail}" if tail else reason
        await self._finish(session, job.id, "FAILED", error)

    async def _finish(self, session: AsyncSession, job_id: uuid.UUID, status: str, error: str | None) -> None:
        # A finished job needs its credential (a hub token) no more.
        values: dict[str, Any] = {"status": status, "ended_at": utcnow(), "error": error, "secret": None}
        if status == "COMPLETED":
            values["progress"] = 1.0
        finished = await session.execute(update(Job).where(Job.id == job_id, Job.status == "RUNNING").values(**values))
        if finished.rowcount == 1:
            await announce_job_end(session, job_id, status, error)
        await session.execute(
            update(JobArtifact)
            .where(JobArtifact.job_id == job_id, JobArtifact.status.in_(("PENDING", "PROCESSING")))
            .values(status="ERROR")
        )
        await self._revoke_keys(session, job_id)

    async def _revoke_keys(self, session: AsyncSession, job_id: uuid.UUID) -> None:
        await session.execute(
            update(ApiKey).where(ApiKey.job_id == job_id, ApiKey.revoked_at.is_(None)).values(revoked_at=utcnow())
        )

    async def _start_pending(self) -> None:
        sessionmaker = self.app.state.sessionmaker
        async with unit_of_work(sessionmaker) as session:
            pending = list(
                (await session.execute(select(Job.id).where(Job.status == "PENDING").order_by(Job.created_at, Job.id)))
                .scalars()
            )
        for job_id in pending:
            async with unit_of_work(sessionmaker) as session:
                job = await session.get(Job, job_id)
                if job is None or job.status != "PENDING":
                    continue
                pool = await session.get(ComputePool, job.compute_pool_id) if job.compute_pool_id else None
                if pool is None or pool.executor not in self.executors:
                    continue  # another replica (with that pool configured) will run it
                if not await self._has_room(session, pool, job):
                    continue
                ranks = self._free_ranks(pool, job.num_gpus) if pool.executor == "local" else []
                if ranks is None:
                    continue
                claimed = await session.execute(
                    update(Job)
                    .where(Job.id == job.id, Job.status == "PENDING")
                    .values(status="RUNNING", runner_id=self.runner_id, executor=pool.executor, started_at=utcnow())
                )
                if claimed.rowcount != 1:
                    continue
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
            # The claim and the key are committed before the process can call back with it.
            if ranks:
                self.gpu_ranks[job.id] = ranks
            await self._launch(job, pool, key)

    async def _has_room(self, session: AsyncSession, pool: ComputePool, job: Job) -> bool:
        running = list(
            (await session.execute(select(Job).where(Job.compute_pool_id == pool.id, Job.status == "RUNNING"))).scalars()
        )
        slots = sum(g.job_slots for g in pool.harmony_groups if g.status == "ONLINE")
        if len(running) >= slots:
            return False
        return sum(j.num_gpus for j in running) + job.num_gpus <= job_gpus(pool)

    def _free_ranks(self, pool: ComputePool, count: int) -> list[int] | None:
        """GPU indices of the local job partition not held by a running job; None if too few are free."""
        if count == 0:
            return []
        group = next((g for g in pool.harmony_groups if g.status == "ONLINE"), None)
        if group is None:
            return None
        held = {rank for ranks in self.gpu_ranks.values() for rank in ranks}
        free = [r for r in range(group.inference_partition, group.world_size) if r not in held]
        return free[:count] if len(free) >= count else None

    async def _launch(self, job: Job, pool: ComputePool, key: str) -> None:
        settings = self.app.state.settings
        job_dir = self.jobs_dir / str(job.id)
        job_dir.mkdir(parents=True, exist_ok=True)
        executor = self.executors[pool.executor]
        env = {
            ENV_BASE_URL: settings.resolved_callback_url,
            ENV_API_KEY: key,
            ENV_JOB_ID: str(job.id),
            # Empty for a job of no use case (a model conversion).
            ENV_USE_CASE: job.use_case.key if job.use_case else "",
            ENV_WORK_DIR: str(job_dir / "work"),
            ENV_NUM_GPUS: str(job.num_gpus),
            ENV_EXECUTOR: pool.executor,
            ENV_CLIENT_TIMEOUT: str(settings.job_client_timeout_s),
        }
        if job.secret:
            env[ENV_JOB_SECRET] = job.secret
        spec = LaunchSpec(
            job_id=job.id,
            recipe_dir=self.app.state.file_store.path(job.recipe_path),
            args=job.args,
            env=env,
            job_dir=job_dir,
            num_gpus=job.num_gpus,
            extra={"gpu_ranks": self.gpu_ranks.get(job.id, [])},
        )
        try:
            handle = await executor.submit(spec)
        except Exception as exc:  # noqa: BLE001 - the executor's failure is the job's error
            log.warning("starting job %s failed: %s", job.id, exc)
            self.gpu_ranks.pop(job.id, None)
            async with unit_of_work(self.app.state.sessionmaker) as session:
                await self._finish(session, job.id, "FAILED", f"the job could not start: {exc}")
            return
        self.tracked[job.id] = (pool.executor, handle)
        async with unit_of_work(self.app.state.sessionmaker) as session:
            await session.execute(update(Job).where(Job.id == job.id).values(handle=handle))

    # -- asked by the jobs service --------------------------------------------------------------------
    def cancel_soon(self, job_id: uuid.UUID) -> None:
        """Stop a canceled job's run in the background (called once the cancel is committed)."""
        task = self._loop_ref.create_task(self.cancel(job_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def cancel(self, job_id: uuid.UUID) -> None:
        """Stop the run of a job already marked CANCELED (if this process runs it)."""
        async with self._lock:
            entry = self.tracked.pop(job_id, None)
            self.gpu_ranks.pop(job_id, None)
            if entry is not None:
                await self.executors[entry[0]].cancel(entry[1])
            async with unit_of_work(self.app.state.sessionmaker) as session:
                await self._revoke_keys(session, job_id)

    async def log_tail(self, job: Job, lines: int) -> str:
        executor = self.executors.get(job.executor or "")
        if executor is None or not job.handle:
            return ""
        return await executor.log_tail(job.handle, self.jobs_dir / str(job.id), lines)

    def job_dir(self, job_id: uuid.UUID) -> Path:
        return self.jobs_dir / str(job_id)
