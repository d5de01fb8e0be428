"""The executor interface: start a recipe run, watch it, stop it, read its log."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

State = Literal["RUNNING", "SUCCEEDED", "FAILED", "STOPPED"]


@dataclass
class LaunchSpec:
    job_id: uuid.UUID
    recipe_dir: Path
    args: dict[str, Any]
    # ADAPTIVE_* variables: where the server is, the job's key, id and use case.
    env: dict[str, str]
    # The job's own folder: its log, its arguments and a scratch space for the recipe.
    job_dir: Path
    num_gpus: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def log_path(self) -> Path:
        return self.job_dir / "job.log"


@dataclass
class ExecState:
    state: State
    exit_code: int | None = None
    message: str | None = None

    @property
    def finished(self) -> bool:
        return self.state != "RUNNING"


def tail_text(text: str, lines: int) -> str:
    return "\n".join(text.splitlines()[-lines:])


def slice_log(data: bytes, start: int, limit: int) -> tuple[bytes, int]:
    """``Executor.log_bytes`` over a log held whole."""
    begin = max(0, len(data) + start) if start < 0 else start
    return data[begin : begin + limit], len(data)


class Executor(ABC):
    name: str
    # Whether a run survives a server restart and can be watched again from its handle.
    reattachable: bool = False

    @abstractmethod
    async def submit(self, spec: LaunchSpec) -> str:
        """Start the run; returns a handle stored on the job."""

    @abstractmethod
    async def poll(self, handle: str) -> ExecState: ...

    @abstractmethod
    async def cancel(self, handle: str) -> None:
        """Stop the run and everything it started."""

    async def reap(self, handle: str) -> bool:
        """Stop a run started by an earlier server process that cannot be watched again; True if something
        was still running."""
        return False

    @abstractmethod
    async def log_tail(self, handle: str, job_dir: Path, lines: int = 50) -> str: ...

    @abstractmethod
    async def log_bytes(self, handle: str, job_dir: Path, start: int, limit: int) -> tuple[bytes, int]:
        """At most ``limit`` bytes of the log from byte ``start`` (a negative start counts from its end), and
        the log's size: what a follower of the log reads as it grows."""

    async def close(self) -> None:
        return None
