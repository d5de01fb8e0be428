"""Stopping the child processes the server starts (local jobs, vLLM servers) in their own process group."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path


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
            except TimeoutError:
                continue
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    if process.returncode is None:
        await process.wait()


# -- process groups recorded in the database (a job's handle), found again after a restart -----------------
def _start_ticks(pid: int) -> int | None:
    """When ``pid`` started (clock ticks since boot), or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count fields after its closing one.
    return int(stat[stat.rindex(")") + 2 :].split()[19])


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return "unknown"


def group_record(pid: int) -> str:
    """``pid:start:boot``, enough to tell this process from a later one given the same pid."""
    return f"{pid}:{_start_ticks(pid) or 0}:{_boot_id()}"


def kill_recorded_group(record: str, wait_s: float = 5.0) -> bool:
    """SIGKILL the process group a ``group_record`` names, if it is still that one; True if it was there.

    A live process with the recorded pid but another start time is a stranger (the pid was reused):
    left alone. If the leader is gone its group may still hold processes; the kernel gives no new
    process the pid of a group that still has members, so signalling that group reaches only ours."""
    try:
        pid_text, start_text, boot = record.split(":")
        pid, start = int(pid_text), int(start_text)
    except ValueError:
        return False  # a bare pid from an older version: nothing to tell a stranger by
    if pid <= 1 or boot != _boot_id():
        return False
    now = _start_ticks(pid)
    if now is not None and now != start:
        return False
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return False
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and _running(pid):
        time.sleep(0.05)
    return True


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
