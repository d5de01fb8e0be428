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
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
from adaptive_engine.server.config import Settings
from adaptive_engine.server.db.models import ComputePool, Job, Model
from adaptive_engine.server.db.session import unit_of_work
from adaptive_engine.server.jobs.executors.base import ExecState, Executor, LaunchSpec
from adaptive_engine.server.jobs.executors.local import LocalExecutor
from adaptive_engine.server.jobs.storage import FileStore
from adaptive_engine.server.periodic import PeriodicService
from adaptive_engine.server.sandbox import Sandbox

log = logging.getLogger("adaptive_engine.jobs")
LOG_TAIL_LINES = 30
RESTART_REASON = "the server restarted while the job was running; its process was lost"
STOP_REASON = "the server stopped while the job was running"


def last_error_line(tail: str) -> str | None:
    for line in reversed(tail.splitlines()):
        if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt|Exit)\b.*:", line) or line.startswith("RecipeError:"):
            return line.strip()
    return None


def free_ranks(pool: ComputePool, count: int, held: set[int]) -> list[int] | None:
    """GPU indices of the pool's local job partition not in ``held``; None if too few are free."""
    if count == 0:
        return []
    group = next((g for g in pool.harmony_groups if g.status == "ONLINE"), None)
    if group is None:
        return None
    free = [r for r in range(group.inference_partition, group.world_size) if r not in held]
    return free[:count] if len(free) >= count else None


class JobStates(Protocol):
    """The jobs domain's side of the runner (``domains/jobs/states.py``): every change of a job's state and of
    its credentials goes through it, in the caller's transaction."""

    async def claim(self, session: AsyncSession, job: Job, pool: ComputePool, runner_id: str) -> str | None:
        """PENDING -> RUNNING for this runner if the pool has room: the job's new API key, or None."""

    async def launched(self, session: AsyncSession, job_id: uuid.UUID, handle: str) -> None:
        """The executor's handle of the run, to reattach to it."""

    async def finish(self, session: AsyncSession, job_id: uuid.UUID, status: str, error: str | None) -> None:
        """RUNNING -> COMPLETED or FAILED, with what it leaves behind."""

    def canceled(self, job_id: uuid.UUID, kind: str) -> None:
        """A cancel through the API was committed (counted in the metrics)."""

    async def revoke_keys(self, session: AsyncSession, job_id: uuid.UUID) -> None:
        """The job's API keys stop working."""


class LaunchedJob(Protocol):
    """What reading a job's log needs: the job and where it runs (a row, or a record of one)."""

    @property
    def id(self) -> uuid.UUID: ...

    @property
    def executor(self) -> str | None: ...

    @property
    def handle(self) -> str | None: ...


class JobRunner(PeriodicService):
    name = "job-runner"
    first_pass_at_start = True

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        store: FileStore,
        states: JobStates,
        sandbox: Sandbox,
    ) -> None:
        super().__init__(settings.job_poll_interval_s)
        self.settings = settings
        self._sessionmaker = sessionmaker
        self._store = store
        self._states = states
        # Where local jobs run (server/sandbox.py).
        self._sandbox = sandbox
        self.executors: dict[str, Executor] = {}
        data_dir = settings.data_dir.resolve()
        self.jobs_dir = data_dir / "jobs"
        self.runner_id = f"{socket.gethostname()}:{hashlib.sha1(str(data_dir).encode()).hexdigest()[:12]}"
        # job id -> (pool executor name, handle) for the runs this process watches
        self.tracked: dict[uuid.UUID, tuple[str, str]] = {}
        # GPU indices given to the local runs (the job partition is the ranks after the inference partition)
        self.gpu_ranks: dict[uuid.UUID, list[int]] = {}
        self._background: set[asyncio.Task[None]] = set()

    # -- lifecycle ------------------------------------------------------------------------------------
    async def start(self) -> None:
        self.executors["local"] = LocalExecutor(self._sandbox, on_exit=self.wake)
        if self.settings.ray_address:
            # Ray is an optional dependency: imported only when a cluster is configured.
            from adaptive_engine.server.jobs.executors.ray import RayExecutor

            self.executors["ray"] = RayExecutor(self.settings.ray_address)
        async with unit_of_work(self._sessionmaker) as session:
            await self._recover(session)
        await super().start()

    async def stop(self) -> None:
        await super().stop()
        # Local runs cannot outlive the server: stop them and record why.
        for job_id, (executor, handle) in list(self.tracked.items()):
            if executor == "local":
                await self.executors[executor].cancel(handle)
                async with unit_of_work(self._sessionmaker) as session:
                    await self._states.finish(session, job_id, "FAILED", STOP_REASON)
                self.tracked.pop(job_id, None)
        # A job claimed by the round the stop interrupted, before its process started, is not tracked.
        async with unit_of_work(self._sessionmaker) as session:
            claimed = await session.execute(
                select(Job.id).where(Job.status == "RUNNING", Job.runner_id == self.runner_id, Job.executor == "local")
            )
            for job_id in list(claimed.scalars()):
                if job_id not in self.tracked:
                    await self._states.finish(session, job_id, "FAILED", STOP_REASON)
        for running in self.executors.values():
            await running.close()

    # -- one round ------------------------------------------------------------------------------------
    async def _pass(self) -> None:
        await self._watch()
        await self._start_pending()

    async def _recover(self, session: AsyncSession) -> None:
        rows = await session.execute(select(Job).where(Job.status == "RUNNING", Job.runner_id == self.runner_id))
        for job in rows.scalars():
            executor = self.executors.get(job.executor or "")
            if executor is not None and executor.reattachable and job.executor and job.handle:
                self.tracked[job.id] = (job.executor, job.handle)
                continue
            # Whatever of its run outlived the last server process must not go on writing for a failed job.
            if executor is not None and job.handle and await executor.reap(job.handle):
                log.warning(
                    "job %s: killed the processes its run left behind (pid %s)", job.id, job.handle.split(":")[0]
                )
            await self._states.finish(session, job.id, "FAILED", RESTART_REASON)

    async def _watch(self) -> None:
        for job_id, (name, handle) in list(self.tracked.items()):
            executor = self.executors[name]
            async with unit_of_work(self._sessionmaker) as session:
                job = await session.get(Job, job_id)
                if job is None or job.status != "RUNNING":
                    # Canceled (or deleted) elsewhere: stop the run.
                    self.tracked.pop(job_id, None)
                    self.gpu_ranks.pop(job_id, None)
                    await executor.cancel(handle)
                    await self._states.revoke_keys(session, job_id)
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
            await self._states.finish(session, job.id, "COMPLETED", None)
            return
        reason = last_error_line(tail) or state.message or "the job failed"
        error = f"{reason}\n--- last lines of the log ---\n{tail}" if tail else reason
        await self._states.finish(session, job.id, "FAILED", error)

    async def _start_pending(self) -> None:
        async with unit_of_work(self._sessionmaker) as session:
            pending = list(
                (
                    await session.execute(
                        select(Job.id).where(Job.status == "PENDING").order_by(Job.created_at, Job.id)
                    )
                ).scalars()
            )
        for job_id in pending:
            async with unit_of_work(self._sessionmaker) as session:
                job = await session.get(Job, job_id)
                if job is None or job.status != "PENDING":
                    continue
                pool = await session.get(ComputePool, job.compute_pool_id) if job.compute_pool_id else None
                if pool is None or pool.executor not in self.executors:
                    continue  # another replica (with that pool configured) will run it
                held = {rank for ranks in self.gpu_ranks.values() for rank in ranks}
                ranks = free_ranks(pool, job.num_gpus, held) if pool.executor == "local" else []
                if ranks is None:
                    continue
                key = await self._states.claim(session, job, pool, self.runner_id)
                if key is None:
                    continue
            # The claim and the key are committed before the process can call back with it.
            if ranks:
                self.gpu_ranks[job.id] = ranks
            await self._launch(job, pool, key)

    async def _launch(self, job: Job, pool: ComputePool, key: str) -> None:
        settings = self.settings
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
            recipe_dir=self._store.path(job.recipe_path),
            args=job.args,
            env=env,
            job_dir=job_dir,
            num_gpus=job.num_gpus,
            extra={"gpu_ranks": self.gpu_ranks.get(job.id, [])},
        )
        try:
            if pool.executor == "local":
                spec.extra["read_only"] = await self._readable_by(job)
            handle = await executor.submit(spec)
        except Exception as exc:  # noqa: BLE001 - the executor's failure is the job's error
            log.warning("starting job %s failed: %s", job.id, exc)
            self.gpu_ranks.pop(job.id, None)
            async with unit_of_work(self._sessionmaker) as session:
                await self._states.finish(session, job.id, "FAILED", f"the job could not start: {exc}")
            return
        self.tracked[job.id] = (pool.executor, handle)
        async with unit_of_work(self._sessionmaker) as session:
            await self._states.launched(session, job.id, handle)

    async def _readable_by(self, job: Job) -> list[Path]:
        """What a local job may read besides its recipe: the weights of the registry's local models (the
        model-weights route hands any of them to a job) and the folder a model import copies."""
        async with unit_of_work(self._sessionmaker) as session:
            sources = (await session.execute(select(Model.source).where(Model.is_external.is_(False)))).scalars()
            paths = [Path(str(source["path"])) for source in sources if source and source.get("path")]
        args = job.args or {}
        if job.kind == "MODEL_CONVERSION" and args.get("source") == "folder" and args.get("model_id"):
            paths.append(Path(str(args["model_id"])))
        return [path for path in paths if path.is_absolute()]

    # -- asked by the jobs service --------------------------------------------------------------------
    def cancel_soon(self, job_id: uuid.UUID, kind: str) -> None:
        """Stop a canceled job's run in the background (called once the cancel is committed)."""
        assert self.loop is not None, "the runner has not been started"
        self._states.canceled(job_id, kind)
        task = self.loop.create_task(self.cancel(job_id))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def cancel(self, job_id: uuid.UUID) -> None:
        """Stop the run of a job already marked CANCELED (if this process runs it)."""
        async with self._lock:
            entry = self.tracked.pop(job_id, None)
            self.gpu_ranks.pop(job_id, None)
            if entry is not None:
                await self.executors[entry[0]].cancel(entry[1])
            async with unit_of_work(self._sessionmaker) as session:
                await self._states.revoke_keys(session, job_id)

    async def log_tail(self, job: LaunchedJob, lines: int) -> str:
        executor = self.executors.get(job.executor or "")
        if executor is None or not job.handle:
            return ""
        return await executor.log_tail(job.handle, self.jobs_dir / str(job.id), lines)

    async def log_bytes(self, job: LaunchedJob, start: int, limit: int) -> tuple[bytes, int]:
        """See ``Executor.log_bytes``; nothing before the job started."""
        executor = self.executors.get(job.executor or "")
        if executor is None or not job.handle:
            return b"", 0
        return await executor.log_bytes(job.handle, self.jobs_dir / str(job.id), start, limit)

    def job_dir(self, job_id: uuid.UUID) -> Path:
        return self.jobs_dir / str(job_id)
