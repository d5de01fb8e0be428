"""Ray executor: submits recipe runs through the Ray Jobs API of a cluster (the `ray` extra).

The recipe folder and its arguments travel as the job's working_dir; our package travels as a
py_module, so the cluster needs only Python with our dependencies. ``num_gpus`` becomes the job's
entrypoint GPU request, so Ray schedules it where GPUs are free.

The address is the operator's (ADAPTIVE_RAY_ADDRESS), checked by the outbound guard when the executor is made:
no control characters or credentials, never a link-local or metadata address. Private and loopback ones are
allowed whatever ADAPTIVE_ALLOW_PRIVATE_NETWORKS says, since a Ray head normally lives on the operator's
own network; the Ray client connects by itself (no address pinning).
"""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

from adaptive_engine.server.errors import Unavailable
from adaptive_engine.server.jobs.executors.base import ExecState, Executor, LaunchSpec, slice_log, tail_text
from adaptive_engine.server.outbound import OutboundGuard
from adaptive_engine.server.sandbox import PACKAGE_ROOT

# How long a submission waits for a freshly started head's job agent.
AGENT_WAIT_S = 60.0
STATES = {
    "PENDING": "RUNNING",
    "RUNNING": "RUNNING",
    "SUCCEEDED": "SUCCEEDED",
    "FAILED": "FAILED",
    "STOPPED": "STOPPED",
}


class RayExecutor(Executor):
    name = "ray"
    reattachable = True

    def __init__(self, address: str) -> None:
        self.address = OutboundGuard(allow_private=True).check_url(
            address, "ADAPTIVE_RAY_ADDRESS", schemes=("http", "https", "ray")
        )
        self._client: Any = None

    def _jobs(self) -> Any:
        if self._client is None:
            try:
                from ray.job_submission import JobSubmissionClient
            except ImportError as exc:
                raise Unavailable("the Ray executor needs the 'ray' extra: pip install adaptive-engine[ray]") from exc
            try:
                self._client = JobSubmissionClient(self.address)
            except Exception as exc:  # connection problems of the cluster
                raise Unavailable(f"cannot reach the Ray cluster at {self.address}: {exc}") from exc
        return self._client

    async def submit(self, spec: LaunchSpec) -> str:
        # working_dir: the recipe (main.py at its root) and its arguments.
        bundle = spec.job_dir / "ray"
        if bundle.exists():
            shutil.rmtree(bundle)
        shutil.copytree(spec.recipe_dir, bundle)
        (bundle / "adaptive_args.json").write_text(json.dumps(spec.args))
        env = {**spec.env, "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
        submission_id = f"adaptive-{spec.job_id}"

        def submit() -> str:
            return self._jobs().submit_job(
                entrypoint="python -m adaptive_engine.recipe.loader job . adaptive_args.json",
                submission_id=submission_id,
                runtime_env={
                    "working_dir": str(bundle),
                    "py_modules": [str(Path(PACKAGE_ROOT) / "adaptive_engine")],
                    "env_vars": env,
                },
                entrypoint_num_gpus=spec.num_gpus or None,
                metadata={"adaptive_job_id": str(spec.job_id)},
            )

        # A head that has just started answers before its job agent is up ("No available agent to
        # submit job"); that refusal submits nothing, so it is safe to try again for a while.
        deadline = time.monotonic() + AGENT_WAIT_S
        while True:
            try:
                return await asyncio.to_thread(submit)
            except Exception as error:  # the Ray client raises plain RuntimeErrors
                if "No available agent" not in str(error) or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(1.0)

    async def poll(self, handle: str) -> ExecState:
        def status() -> tuple[str, str | None]:
            info = self._jobs().get_job_info(handle)
            return str(getattr(info.status, "value", info.status)), info.message

        state, message = await asyncio.to_thread(status)
        mapped = STATES.get(state, "RUNNING")
        return ExecState(mapped, message=message if mapped != "RUNNING" else None)  # type: ignore[arg-type]

    async def cancel(self, handle: str) -> None:
        await asyncio.to_thread(lambda: self._jobs().stop_job(handle))

    async def _logs(self, handle: str) -> str:
        try:
            return await asyncio.to_thread(lambda: self._jobs().get_job_logs(handle))
        except Exception:  # logs are best effort
            return ""

    async def log_tail(self, handle: str, job_dir: Path, lines: int = 50) -> str:
        return tail_text(await self._logs(handle), lines)

    async def log_bytes(self, handle: str, job_dir: Path, start: int, limit: int) -> tuple[bytes, int]:
        # Ray hands the whole log each time: a follower of a big Ray log pays for it at each read.
        return slice_log((await self._logs(handle)).encode("utf-8"), start, limit)
