"""The sandbox itself (server/sandbox.py), one real sandboxed process per test: who it runs as, what it
sees of the files, processes, network and environment of this machine, and its limits."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from adaptive_engine.server.config import Settings
from adaptive_engine.server.sandbox import (
    GRADER_LIMITS,
    JOB_LIMITS,
    PROBE_LIMITS,
    SANDBOX_UID,
    Limits,
    Sandbox,
    user_env,
)


def run_inside(
    sandbox: Sandbox,
    code: str,
    *,
    limits: Limits = PROBE_LIMITS,
    cwd: Path = Path("/tmp"),
    env: dict[str, str] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """Runs ``code`` (which prints one JSON object) in the sandbox; returns what it printed."""
    launch = asyncio.run(
        sandbox.launch("a test", [sys.executable, "-c", code], cwd=cwd, env=env or user_env(), limits=limits, **options)
    )
    assert launch.sandboxed
    done = subprocess.run(launch.argv, env=launch.env, cwd=launch.cwd, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    return Sandbox(Settings(data_dir=tmp_path / "data"))


TRY_READ = """
import json, sys
try:
    text = open(sys.argv[1] if len(sys.argv) > 1 else {path!r}).read()
    print(json.dumps({{"read": text}}))
except OSError as error:
    print(json.dumps({{"error": error.strerror}}))
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="as a user other than root the sandbox runs as that same user")
def test_as_root_it_runs_as_another_uid_that_cannot_read_root_files(sandbox: Sandbox, tmp_path: Path) -> None:
    secret = tmp_path / "root-only"
    secret.write_text("s3cret")
    secret.chmod(0o600)
    assert secret.read_text() == "s3cret"  # the control: root reads it
    found = run_inside(
        sandbox,
        "import json, os; print(json.dumps({'uid': os.getuid(), 'gid': os.getgid(), 'groups': os.getgroups()}))",
    )
    assert found == {"uid": SANDBOX_UID, "gid": SANDBOX_UID, "groups": []}
    # Bound into the sandbox on purpose, it stays root's.
    found = run_inside(sandbox, TRY_READ.format(path=str(secret)), read_only=[secret])
    assert found == {"error": "Permission denied"}


def test_it_sees_no_other_process_and_no_secret(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAPTIVE_ADMIN_API_KEY", "must-not-leak")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "must-not-leak")
    found = run_inside(
        sandbox,
        "import json, os; print(json.dumps({'pids': sorted(int(p) for p in os.listdir('/proc') "
        "if p.isdigit()), 'me': os.getpid(), 'env': sorted(os.environ)}))",
    )
    # Its PID namespace: bubblewrap's init (1) and itself.
    assert found["pids"] == [1, found["me"]] and found["me"] < 10
    assert not [name for name in found["env"] if name.startswith("ADAPTIVE_") or "SECRET" in name]


def test_no_network_unless_asked(sandbox: Sandbox) -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code = (
            f"import json, socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=5).close()\n"
            "    print(json.dumps({'connected': True}))\nexcept OSError as e:\n"
            "    print(json.dumps({'connected': False, 'why': str(e)}))"
        )
        assert run_inside(sandbox, code)["connected"] is False
        assert run_inside(sandbox, code, limits=JOB_LIMITS, network=True)["connected"] is True


def test_private_folders_stay_hidden_under_a_bound_one(tmp_path: Path) -> None:
    """The data dir inside a folder bound read-only is covered; a job folder inside the data dir is bound
    writable again, and only it."""
    outer = tmp_path / "outer"
    data = outer / "data"
    job = data / "jobs" / "j1"
    job.mkdir(parents=True)
    (outer / "visible.txt").write_text("fine")
    (data / "engine.db").write_text("private")
    sandbox = Sandbox(Settings(data_dir=data))
    code = f"""
import json, os
seen = {{}}
for name in ("visible.txt", "data/engine.db"):
    try:
        seen[name] = open(os.path.join({str(outer)!r}, name)).read()
    except OSError as error:
        seen[name] = error.strerror
for folder in ({str(outer)!r}, {str(data)!r}, {str(job)!r}):
    try:
        open(os.path.join(folder, "written"), "w").close()
        seen[folder] = "written"
    except OSError as error:
        seen[folder] = error.strerror
print(json.dumps(seen))
"""
    sandbox.hand_over(job)
    found = run_inside(sandbox, code, limits=JOB_LIMITS, read_only=[outer], writable=[job])
    assert found["visible.txt"] == "fine"
    assert found["data/engine.db"] == "No such file or directory"
    assert found[str(outer)] == "Read-only file system"
    assert found[str(data)] in ("Permission denied", "Read-only file system")
    assert found[str(job)] == "written" and (job / "written").exists()
    assert not (data / "written").exists() and not (outer / "written").exists()


def test_limits_apply(sandbox: Sandbox) -> None:
    code = """
import json, resource
names = ("RLIMIT_NPROC", "RLIMIT_FSIZE", "RLIMIT_AS")
limits = {name: resource.getrlimit(getattr(resource, name))[1] for name in names}
try:
    with open("/tmp/big", "wb") as out:
        out.write(b"x" * (65 * 1024 * 1024))
    limits["big_write"] = "done"
except OSError as error:
    limits["big_write"] = error.strerror
print(json.dumps(limits))
"""
    found = run_inside(sandbox, code)
    assert found["RLIMIT_NPROC"] == PROBE_LIMITS.processes
    assert found["RLIMIT_FSIZE"] == PROBE_LIMITS.file_bytes and found["RLIMIT_AS"] == PROBE_LIMITS.address_space_bytes
    assert found["big_write"] == "File too large"
    assert (
        run_inside(sandbox, code.replace("65 * ", "1 * "), limits=GRADER_LIMITS)["RLIMIT_NPROC"]
        == GRADER_LIMITS.processes
    )
