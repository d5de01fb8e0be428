"""One server per data dir: an OS lock on ``DATA_DIR/server.lock``, held for the process's lifetime.

A second server on the same data dir would run its start-up (migrations, model reloads) against the files
and database of the one already serving, then fail to bind the port. It must refuse before any of that.
``flock`` is released by the kernel when the holder dies (even SIGKILL), so a crash never leaves a stale
lock; the file's content (pid, address) only serves the refusal message. Replicas sharing a PostgreSQL
database each have a data dir of their own: the lock is per data dir, not per database.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_FILE = "server.lock"
# The exit status of `serve` when the data dir is in use (uvicorn's status for any failed start-up is 3).
IN_USE_EXIT_STATUS = 4


class DataDirInUse(RuntimeError):
    def __init__(self, data_dir: Path, holder: str) -> None:
        self.data_dir = data_dir
        self.holder = holder
        super().__init__(
            f"data dir {data_dir} is in use by another Adaptive Engine server ({holder or 'unknown process'}); "
            "stop it first, or give this one another --data-dir"
        )


class DataDirLock:
    """Held while the object lives; :meth:`release` (or process exit) lets the next server in."""

    def __init__(self, data_dir: Path, fd: int) -> None:
        self.data_dir = data_dir
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, data_dir: Path, address: str = "") -> DataDirLock:
        """Take the lock without waiting, or raise :class:`DataDirInUse`. Creates the data dir if missing,
        and writes nothing when the lock is held elsewhere."""
        data_dir = Path(data_dir).resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        # No O_TRUNC: the holder's details must survive a refused attempt. Not inherited by child processes
        # (the default for os.open), so a job that outlives the server cannot keep the data dir locked.
        fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
            os.close(fd)
            raise DataDirInUse(data_dir, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}{', ' + address if address else ''}\n".encode(), 0)
        return cls(data_dir, fd)

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
