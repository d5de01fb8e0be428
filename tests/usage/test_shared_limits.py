"""Two server processes sharing PostgreSQL and Redis enforce one limit together."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.support import free_port, private_postgres_database
from tests.usage.test_limits import REDIS_URL, forget
from tests.usage.world import build

SRC = str(Path(__file__).resolve().parents[2] / "src")
ADMIN_KEY = "ae_shared_limits_admin"


def serve(data_dir: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
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
        str(data_dir),
    ]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError((process.stdout.read() if process.stdout else b"").decode()[-3000:])
        time.sleep(0.2)


@pytest.fixture
def two_servers(tmp_path: Path) -> Iterator[list[str]]:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    processes = []
    with private_postgres_database() as database_url:
        env = {
            **os.environ,
            "PYTHONPATH": SRC,
            "ADAPTIVE_ADMIN_API_KEY": ADMIN_KEY,
            "ADAPTIVE_BUNDLED_MODELS": "false",
            "ADAPTIVE_BUILTIN_RECIPES": "false",
            "ADAPTIVE_DATABASE_URL": database_url,
            "ADAPTIVE_REDIS_URL": REDIS_URL,
            "ADAPTIVE_REDIS_PREFIX": prefix,
        }
        try:
            urls = []
            for name in ("a", "b"):  # one after the other: the first one migrates the database
                process, url = serve(tmp_path / name, env)
                processes.append(process)
                urls.append(url)
            yield urls
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
            forget(prefix)


def test_two_server_processes_sharing_postgresql_and_redis_enforce_one_limit(two_servers, upstream) -> None:
    a, b = two_servers
    world = build(a, ADMIN_KEY, upstream)
    world.mint("alice.shared")
    world.admin.usage.set_limits("API_KEY", world.key_ids["alice.shared"], requests_per_minute=5)
    time.sleep(2.2)  # the other process reads the new limit within usage_cache_seconds (2 s by default)
    clients = {
        url: openai.OpenAI(base_url=url + "/api/v1", api_key=world.keys["alice.shared"], max_retries=0)
        for url in (a, b)
    }
    for i in range(5):  # a, b, a, b, a
        clients[(a, b)[i % 2]].chat.completions.create(
            model=world.k("uc"), messages=[{"role": "user", "content": "hi"}]
        )
    for url in (b, a):  # the sixth is refused by either process
        with pytest.raises(openai.RateLimitError) as refused:
            clients[url].chat.completions.create(model=world.k("uc"), messages=[{"role": "user", "content": "hi"}])
        assert refused.value.response.json()["error"]["details"]["limit"] == "requests_per_minute"
        assert 1 <= int(refused.value.response.headers["retry-after"]) <= 60
    world.admin.close()
