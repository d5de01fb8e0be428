"""Group commit never acknowledges what it has not committed: SIGKILL the server during a burst of
logging, restart it, and find every acknowledged interaction and feedback."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from tests.support import free_port

SRC = str(Path(__file__).resolve().parents[2] / "src")
KEY = "durability-admin-key"
WORKERS = 32
KILL_AFTER = 300  # acknowledged events


def start_server(data_dir: Path, database: str | None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": SRC, "ADAPTIVE_ADMIN_API_KEY": KEY, "ADAPTIVE_BUNDLED_MODELS": "false"}
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
        "--log-level",
        "warning",
    ]
    if database:
        command += ["--database-url", database]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/health").status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        assert process.poll() is None, "server exited during start"
        assert time.monotonic() < deadline, "server did not become healthy"
        time.sleep(0.1)


def gql(url: str, query: str, variables: dict | None = None) -> dict:
    body = httpx.post(
        f"{url}/api/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    ).json()
    assert not body.get("errors"), body
    return body["data"]


async def burst(url: str, use_case: str, metric: str, process: subprocess.Popen) -> tuple[set[str], set[str]]:
    """Log until KILL_AFTER events are acknowledged, SIGKILL the server mid-burst, return what was acked."""
    completions: set[str] = set()
    feedbacks: set[str] = set()
    killed = asyncio.Event()

    async def worker(client: httpx.AsyncClient, n: int) -> None:
        i = 0
        while not killed.is_set():
            i += 1
            try:
                r = await client.post(
                    "/api/v1/interactions",
                    json={
                        "use_case": use_case,
                        "completion": f"w{n}-{i}",
                        "messages": [{"role": "user", "content": f"question {n}-{i}"}],
                        "feedbacks": [{"metric": metric, "value": i % 2}],
                    },
                )
                if r.status_code != 201:
                    return
                body = r.json()
                completions.add(body["completion_id"])
                feedbacks.update(body["feedback_ids"])
                r = await client.post(
                    "/api/v1/feedback", json={"completion_id": body["completion_id"], "metric": metric, "value": 1}
                )
                if r.status_code != 201:
                    return
                feedbacks.add(r.json()["feedback_id"])
            except httpx.HTTPError:
                return
            if len(completions) + len(feedbacks) >= KILL_AFTER and not killed.is_set():
                # Requests of the other workers are in flight right now.
                process.send_signal(signal.SIGKILL)
                killed.set()

    async with httpx.AsyncClient(
        base_url=url,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,
        limits=httpx.Limits(max_connections=WORKERS),
    ) as client:
        await asyncio.gather(*[worker(client, n) for n in range(WORKERS)])
    return completions, feedbacks


def test_acknowledged_writes_survive_sigkill(tmp_path: Path, database: str | None) -> None:
    process, url = start_server(tmp_path, database)
    suffix = uuid.uuid4().hex[:8]
    use_case, metric = f"dur-{suffix}", f"dur-ok-{suffix}"
    try:
        gql(
            url,
            "mutation($i: UseCaseCreate!) { createUseCase(input: $i) { id } }",
            {"i": {"key": use_case, "name": use_case}},
        )
        gql(
            url,
            "mutation($i: MetricCreate!) { createMetric(input: $i) { id } }",
            {"i": {"key": metric, "name": metric, "kind": "BOOL"}},
        )
        completions, feedbacks = asyncio.run(burst(url, use_case, metric, process))
        process.wait(timeout=30)
        assert process.returncode == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert len(completions) + len(feedbacks) >= KILL_AFTER

    process, url = start_server(tmp_path, database)
    try:
        stored_completions: set[str] = set()
        stored_feedbacks: set[str] = set()
        after = None
        while True:
            data = gql(
                url,
                """query($f: ListCompletionsFilterInput!, $p: CursorPageInput) {
                completions(filter: $f, page: $p) {
                  pageInfo { hasNextPage endCursor } nodes { id directFeedbacks { id } }
                } }""",
                {"f": {"useCase": use_case}, "p": {"first": 1000, **({"after": after} if after else {})}},
            )["completions"]
            for node in data["nodes"]:
                stored_completions.add(node["id"])
                stored_feedbacks.update(f["id"] for f in node["directFeedbacks"])
            if not data["pageInfo"]["hasNextPage"]:
                break
            after = data["pageInfo"]["endCursor"]
        assert completions <= stored_completions, (
            f"{len(completions - stored_completions)} acknowledged interactions lost"
        )
        assert feedbacks <= stored_feedbacks, f"{len(feedbacks - stored_feedbacks)} acknowledged feedbacks lost"
    finally:
        process.terminate()
        process.wait(timeout=30)
