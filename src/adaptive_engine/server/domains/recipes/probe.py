"""Runs recipe code outside the server process: the JSON schema probe, under a time limit."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import adaptive_engine
from adaptive_engine.server.errors import InvalidInput

PACKAGE_ROOT = str(Path(adaptive_engine.__file__).resolve().parents[1])


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for a process that runs recipe code: our package importable, nothing secret added."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADAPTIVE_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (PACKAGE_ROOT, env.get("PYTHONPATH")) if p)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


async def derive_schema(folder: Path, timeout_s: float) -> dict[str, Any]:
    """The JSON schema of the recipe's Config, computed in a subprocess; InvalidInput with the reason
    when the recipe does not load."""
    return (await describe_recipe(folder, timeout_s))["schema"]


async def describe_recipe(folder: Path, timeout_s: float) -> dict[str, Any]:
    """{"schema", "job_kind", "description"} of the recipe in ``folder``, from a subprocess."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "adaptive_engine.recipe.loader",
        "schema",
        str(folder),
        cwd=str(folder),
        env=child_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout_s)
    except (asyncio.TimeoutError, asyncio.CancelledError):
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
