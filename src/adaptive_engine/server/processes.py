"""Stopping the child processes the server starts (local jobs, vLLM servers) in their own process group."""

from __future__ import annotations

import asyncio
import os
import signal


async def stop_process_group(process: asyncio.subprocess.Process, grace_s: float) -> None:
    """SIGTERM to the group led by ``process`` (started with ``start_new_session``), SIGKILL after
    ``grace_s``; then SIGKILL again to the group, for children that outlived their leader."""
    if process.returncode is None:
        for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            try:
                await asyncio.wait_for(process.wait(), wait)
                break
            except asyncio.TimeoutError:
                continue
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if process.returncode is None:
        await process.wait()
