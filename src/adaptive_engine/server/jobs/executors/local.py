"""Local executor: one sandboxed subprocess per job, in its own process group (killed as a group on cancel,
and, after a crash of the server, by the recovery at its next start)."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from adaptive_engine.server.jobs.executors.base import (
    ExecState,
    Executor,
    LaunchSpec,
    tail_text,
)
from adaptive_engine.server.processes import group_record, kill_recorded_group, stop_process_group
from adaptive_engine.server.sandbox import JOB_LIMITS, Sandbox, user_env

GRACE_S = 5.0


class LocalExecutor(Executor):
    name = "local"
    reattachable = False

    def __init__(self, sandbox: Sandbox, on_exit: Callable[[], None] | None = None) -> None:
        self.sandbox = sandbox
        self._processes: dict[str, asyncio.subprocess.Process] = {}
        # Called when a run's process ends, so the runner records it without waiting for its next round.
        self._on_exit = on_exit
        self._waiters: set[asyncio.Task[None]] = set()

    async def submit(self, spec: LaunchSpec) -> str:
        work, home, tmp = spec.job_dir / "work", spec.job_dir / "home", spec.job_dir / "tmp"
        for folder in (work, home, tmp):
            folder.mkdir(parents=True, exist_ok=True)
        args_file = spec.job_dir / "args.json"
        args_file.write_text(json.dumps(spec.args))
        env = user_env(spec.env, home=str(home))
        env["TMPDIR"] = str(tmp)
        # Only the GPUs the runner gave the job are visible to it (none for a CPU job).
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(r) for r in spec.extra.get("gpu_ranks", []))
        # Its own folder writable; the recipe and model weights (paths the runner names) read-only; the
        # network kept, to call the server back with its own key.
        launch = await self.sandbox.launch(
            "running a recipe job",
            [sys.executable, "-m", "adaptive_engine.recipe.loader", "job", str(spec.recipe_dir), str(args_file)],
            cwd=work,
            env=env,
            limits=JOB_LIMITS,
            network=True,
            gpus=True,
            expose_model_cache=True,
            read_only=[spec.recipe_dir, *spec.extra.get("read_only", [])],
            writable=[spec.job_dir],
        )
        self.sandbox.hand_over(spec.job_dir, work, home, tmp)
        with open(spec.log_path, "ab") as log:
            process = await asyncio.create_subprocess_exec(
                *launch.argv,
                cwd=launch.cwd,
                env=launch.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        handle = group_record(process.pid)
        self._processes[handle] = process
        if self._on_exit is not None:
            waiter = asyncio.create_task(self._notify(process))
            self._waiters.add(waiter)
            waiter.add_done_callback(self._waiters.discard)
        return handle

    async def _notify(self, process: asyncio.subprocess.Process) -> None:
        await process.wait()
        if self._on_exit is not None:
            self._on_exit()

    async def poll(self, handle: str) -> ExecState:
        process = self._processes.get(handle)
        if process is None:
            return ExecState("FAILED", message="the job's process is gone (the server restarted)")
        if process.returncode is None:
            return ExecState("RUNNING")
        self._processes.pop(handle, None)
        code = process.returncode
        if code == 0:
            return ExecState("SUCCEEDED", exit_code=0)
        if code < 0:
            return ExecState("STOPPED", exit_code=code, message=f"killed by signal {-code}")
        return ExecState("FAILED", exit_code=code, message=f"exit code {code}")

    async def cancel(self, handle: str) -> None:
        process = self._processes.pop(handle, None)
        if process is None or process.returncode is not None:
            return
        await stop_process_group(process, GRACE_S)

    async def reap(self, handle: str) -> bool:
        """Kill what is left of a run a previous server process started (its recorded process group)."""
        return await asyncio.to_thread(kill_recorded_group, handle)

    async def log_tail(self, handle: str, job_dir: Path, lines: int = 50) -> str:
        path = job_dir / "job.log"
        if not path.exists():
            return ""
        size = path.stat().st_size
        with open(path, "rb") as log:
            log.seek(max(0, size - 64 * 1024))
            return tail_text(log.read().decode("utf-8", errors="replace"), lines)

    async def log_bytes(self, handle: str, job_dir: Path, start: int, limit: int) -> tuple[bytes, int]:
        path = job_dir / "job.log"
        if not path.exists():
            return b"", 0

        def read() -> tuple[bytes, int]:
            with open(path, "rb") as log:
                size = os.fstat(log.fileno()).st_size
                log.seek(max(0, size + start) if start < 0 else min(start, size))
                return log.read(limit), size

        return await asyncio.to_thread(read)

    async def close(self) -> None:
        for handle in list(self._processes):
            await self.cancel(handle)
