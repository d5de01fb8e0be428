"""No orphans: a job's processes die with the server, and a restart kills whatever a run left behind (never a
stranger that got the same pid) before it marks the job FAILED."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
import uuid
from pathlib import Path

from adaptive_engine import Adaptive
from adaptive_engine.server.processes import group_record
from bench.server_process import ServerProcess
from tests.jobs import recipes
from tests.jobs.helpers import upload, wait_for
from tests.support import LiveServer, make_settings, process_alive, process_tree

ADMIN_KEY = "ae_orphans_admin_" + uuid.uuid4().hex
SERVER_ENV = {"ADAPTIVE_BUNDLED_MODELS": "false", "ADAPTIVE_BUILTIN_RECIPES": "false"}

# Writes a line to its log every 0.2 s for a minute.
TICKER = """
import time
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Config(InputConfig):
    seconds: float = 60

@recipe_main
def main(config: Config, ctx: RecipeContext) -> None:
    end = time.monotonic() + config.seconds
    n = 0
    while time.monotonic() < end:
        n += 1
        print(f"tick {n}", flush=True)
        time.sleep(0.2)
"""


def _wait_until(condition, limit_s: float, what: str) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_a_killed_server_leaves_no_job_running(tmp_path: Path) -> None:
    data = tmp_path / "data"
    server = ServerProcess(data, ADMIN_KEY, env=SERVER_ENV, log_path=tmp_path / "server.log", timeout_s=120)
    try:
        with Adaptive(server.url, api_key=ADMIN_KEY) as sdk:
            sdk.use_cases.create("orphans")
            sdk.set_default_use_case("orphans")
            upload(sdk, tmp_path, TICKER, "ticker")
            job = sdk.jobs.run("ticker", num_gpus=0)
            wait_for(sdk, job.id, {"RUNNING"})
            log = data / "jobs" / job.id / "job.log"
            _wait_until(lambda: log.exists() and "tick 3" in log.read_text(), 60, "the job never ticked")
        job_processes = process_tree(server.proc.pid) - {server.proc.pid}
        assert len(job_processes) >= 2, job_processes  # the sandbox and the recipe, at least
        server.proc.send_signal(signal.SIGKILL)
        server.proc.wait(30)
    finally:
        server.stop()
    _wait_until(
        lambda: not any(process_alive(pid) for pid in job_processes),
        15,
        f"job processes outlived the server: {[p for p in job_processes if process_alive(p)]}",
    )
    size = log.stat().st_size
    with ServerProcess(data, ADMIN_KEY, env=SERVER_ENV, log_path=tmp_path / "server2.log", timeout_s=120) as again:
        with Adaptive(again.url, api_key=ADMIN_KEY) as sdk:
            failed = sdk.jobs.get(job.id)
            assert failed.status == "FAILED" and "its process was lost" in failed.error
            time.sleep(2)  # ten more ticks, were the run alive
            assert log.stat().st_size == size, log.read_text()[-300:]


def _leftover() -> subprocess.Popen:
    """A process group like a run leaves: a leader (start_new_session) with a child of its own."""
    return subprocess.Popen(["sh", "-c", "sleep 300 & exec sleep 301"], start_new_session=True)


def test_restart_kills_what_a_run_left_and_spares_a_reused_pid(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with (
        LiveServer(make_settings(data, local_job_slots=2)) as live,
        Adaptive(live.base_url, api_key=live.api_key) as sdk,
    ):
        sdk.use_cases.create("leftovers")
        sdk.set_default_use_case("leftovers")
        upload(sdk, tmp_path, recipes.SLEEPER, "sleeper")
        jobs = [sdk.jobs.run("sleeper", num_gpus=0) for _ in range(2)]
        for job in jobs:
            wait_for(sdk, job.id, {"RUNNING"})
    # As if the server had crashed: both jobs RUNNING, one with the record of a group still running (its
    # run's), one with the pid of a live stranger but another start time (the pid was reused since).
    left, stranger = _leftover(), _leftover()
    try:
        _wait_until(lambda: len(process_tree(left.pid)) == 2, 10, "the leftover group did not start")
        left_tree = process_tree(left.pid)
        pid, start, boot = group_record(stranger.pid).split(":")
        records = {jobs[0].id: group_record(left.pid), jobs[1].id: f"{pid}:{int(start) - 1}:{boot}"}
        db = sqlite3.connect(data / "engine.db")
        for job_id, record in records.items():
            db.execute(
                "UPDATE jobs SET status = 'RUNNING', error = NULL, ended_at = NULL, handle = ? WHERE id = ?",
                (record, uuid.UUID(job_id).hex),
            )
        db.commit()
        db.close()
        with LiveServer(make_settings(data)) as live, Adaptive(live.base_url, api_key=live.api_key) as sdk:
            for job in jobs:
                again = sdk.jobs.get(job.id)
                assert again.status == "FAILED" and "its process was lost" in again.error
        left.wait(10)
        assert not any(process_alive(p) for p in left_tree), "the run's leftovers survived the restart"
        assert stranger.poll() is None, "a stranger with a reused pid was killed"
    finally:
        for process in (left, stranger):
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
