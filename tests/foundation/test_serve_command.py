from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import free_port

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_serve_brings_up_a_healthy_server(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "ADAPTIVE_ADMIN_API_KEY": "serve-test-key",
        "ADAPTIVE_BUNDLED_MODELS": "false",
    }
    command = [
        sys.executable,
        "-m",
        "adaptive_engine.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(tmp_path),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert time.monotonic() < deadline, "server did not become healthy"
            time.sleep(0.2)
        me = httpx.post(
            f"http://127.0.0.1:{port}/api/graphql",
            headers={"Authorization": "Bearer serve-test-key"},
            json={"query": "{ me { email } }"},
        )
        assert me.json()["data"]["me"]["email"] == "admin@localhost"
        assert (tmp_path / "engine.db").exists()
    finally:
        process.terminate()
        process.wait(timeout=30)
