"""Runs recipe code outside the server process, in the sandbox: the JSON schema probe, under a time limit."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.sandbox import PROBE_LIMITS, Sandbox, user_env


async def describe_recipe(folder: Path, timeout_s: float, sandbox: Sandbox) -> dict[str, Any]:
    """{"schema", "job_kind", "description"} of the recipe in ``folder``, from a sandboxed subprocess (no
    network, the recipe folder read-only); SandboxUnavailable where user code cannot run here."""
    launch = await sandbox.launch(
        "loading the recipe",
        [sys.executable, "-m", "adaptive_engine.recipe.loader", "schema", str(folder)],
        cwd=folder,
        env=user_env(),
        limits=PROBE_LIMITS,
        read_only=[folder],
    )
    process = await asyncio.create_subprocess_exec(
        *launch.argv,
        cwd=launch.cwd,
        env=launch.env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except (TimeoutError, asyncio.CancelledError):
        try:
            os.killpg(process.pid, 9)
        except ProcessLookupError:
            pass
        await process.wait()
        raise InvalidInput(f"recipe rejected: loading it took longer than {timeout_s:g} s") from None
    lines = [line for line in stdout.decode(errors="replace").splitlines() if line.startswith("{")]
    try:
        answer = json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        tail = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise InvalidInput(f"recipe rejected: loading it failed ({tail[0]})") from None
    if "error" in answer:
        raise InvalidInput(f"recipe rejected: {answer['error']}")
    return answer
