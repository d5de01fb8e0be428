"""Local executor: one subprocess per job, in its own process group (killed as a group on cancel)."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from pathlib import Path

from adaptive_engine.server.domains.recipes.probe import child_env
from adaptive_engine.server.jobs.executors.base import (
    ExecState,
    Executor,
    LaunchSpec,
    tail_text,
)
from adaptive_engine.server.processes import stop_process_group

GRACE_S = 5.0


class LocalExecutor(Executor):
    name = "local"
    reattachable = False

    def __init__(self, on_exit: Callable[[], None] | None = None) -> None:
        self._processes: dict[str, asyncio.subprocess.Process] = {}
        # Called when a run's process ends, so the runner records it without waiting for its next round.
        self._on_exit = on_exit
        self._waiters: set[asyncio.Task[None]] = set()

    async def submit(self, spec: LaunchSpec) -> str:
        work = spec.job_dir / "work"
        work.mkdir(parents=True, exist_ok=True)
        args_file = spec.job_dir / "args.json"
        args_file.write_text(json.dumps(spec.args))
        env = child_env({**spec.env, "PYTHONDONTWRITEBYTECODE": "1"})
        # Only the GPUs the runner gave the job are visible to it (none for a CPU job).
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(r) for r in spec.extra.get("gpu_ranks", []))
        with open(spec.log_path, "ab") as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "adaptive_engine.recipe.loader",
                "job",
                str(spec.recipe_dir),
                str(args_file),
                cwd=str(work),
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
        handle = str(process.pid)
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

    async def log_tail(self, handle: str, job_dir: Path, lines: int = 50) -> str:
        path = job_dir / "job.log"
        if not path.exists():
            return ""
        size = path.stat().st_size
        with open(path, "rb") as log:
            log.seek(max(0, size - 64 * 1024))
            return tail_text(log.read().decode("utf-8", errors="replace"), lines)

    async def close(self) -> None:
        for handle in list(self._processes):
            await self.cancel(handle)
