"""Our server as a process of its own for the benchmarks: ``adaptive-engine serve`` on a free loopback port,
waited for until /health answers, stopped with SIGTERM (SIGKILL if it hangs)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(health_url: str, process: subprocess.Popen, timeout_s: float, interval_s: float = 0.2) -> bool:
    """Whether ``health_url`` answered 200 within ``timeout_s`` (False at once if ``process`` exited)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if httpx.get(health_url, timeout=2).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            return False
        time.sleep(interval_s)


class ServerProcess:
    def __init__(
        self,
        data_dir: Path | str,
        api_key: str,
        env: dict[str, str] | None = None,
        database_url: str | None = None,
        log_path: Path | None = None,
        extra_path: str | None = None,
        timeout_s: float = 300.0,
        launcher: list[str] | None = None,
    ) -> None:
        """``env``: ADAPTIVE_* settings on top of this process's environment; ``log_path``: where its output
        goes (discarded without); ``extra_path``: more of sys.path for it (e.g. packages to compare);
        ``launcher``: what runs the CLI's ``serve ...`` arguments instead of ``-m adaptive_engine.cli`` (a
        script that observes the server from inside)."""
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        pythonpath = os.pathsep.join([str(ROOT / "src"), *([extra_path] if extra_path else [])])
        full_env = {**os.environ, "PYTHONPATH": pythonpath, "ADAPTIVE_ADMIN_API_KEY": api_key, **(env or {})}
        cmd = [
            sys.executable,
            *(launcher or ["-m", "adaptive_engine.cli"]),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--data-dir",
            str(data_dir),
            "--log-level",
            "warning",
        ]
        if database_url:
            cmd += ["--database-url", database_url]
        self._log: IO[bytes] | None = open(log_path, "wb") if log_path else None
        output = self._log if self._log is not None else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, env=full_env, stdout=output, stderr=subprocess.STDOUT)
        if not wait_until_healthy(f"{self.url}/health", self.proc, timeout_s):
            self.stop()
            raise RuntimeError(f"the server did not start{f'; see {log_path}' if log_path else ''}")

    def cpu_seconds(self) -> float:
        """CPU time (user and system, all threads) the server process has used so far: divided by the work done,
        a cost that other load on the machine barely moves. NaN where there is no /proc."""
        try:
            fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return float("nan")
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
