"""`adaptive-engine use-cases|models|datasets|jobs|recipes …` in a subprocess, against a live server, through
the SDK; with the base URL and key from the environment, as a user sets them once."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adaptive_engine import Adaptive
from tests.jobs.recipes import FAILING, SLEEPER, WORKER
from tests.support import LiveServer

SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture
def cli(server: LiveServer):
    env = {**os.environ, "PYTHONPATH": SRC, "ADAPTIVE_BASE_URL": server.base_url, "ADAPTIVE_API_KEY": server.api_key}
    env.pop("ADAPTIVE_USE_CASE", None)

    def run(*args: str, cwd: Path | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "adaptive_engine.cli", *args],
            capture_output=True,
            text=True,
            env={**env, **extra},
            cwd=cwd,
            timeout=240,
        )

    return run


def test_use_cases_and_models(cli, client: Adaptive, upstream, unique: str) -> None:
    created = cli("use-cases", "create", f"uc-{unique}", "--name", "Support bot")
    assert created.returncode == 0, created.stderr
    assert f"created use case uc-{unique}" in created.stdout
    again = cli("use-cases", "create", f"uc-{unique}")
    assert again.returncode == 1 and again.stderr.startswith("error: ") and len(again.stderr.splitlines()) == 1

    client.models.add_external(
        name="Fake",
        external_model_id="fake-model",
        api_key="k",
        provider="open_ai",
        endpoint=upstream.base_url,
        key=f"ext-{unique}",
    )
    attached = cli("models", "attach", f"ext-{unique}", "--use-case", f"uc-{unique}", "--wait", "--default")
    assert attached.returncode == 0, attached.stderr
    assert f"ext-{unique} attached to uc-{unique}: ONLINE (default)" in attached.stdout

    listed = cli("use-cases", "list").stdout
    row = next(line for line in listed.splitlines() if line.startswith(f"uc-{unique} "))
    assert "Support bot" in row and f"ext-{unique}*" in row
    models = cli("models", "list").stdout
    assert any(
        line.split()[:2] == [f"ext-{unique}", "ONLINE"] and f"uc-{unique}" in line for line in models.splitlines()
    )

    missing = cli("models", "attach", "no-such-model", "--use-case", f"uc-{unique}")
    assert missing.returncode == 1 and "no-such-model" in missing.stderr
    no_key = cli("use-cases", "list", ADAPTIVE_API_KEY="")
    assert (no_key.returncode, no_key.stderr) == (1, "error: no API key: pass --api-key or set ADAPTIVE_API_KEY\n")


def test_datasets_recipes_and_jobs(cli, client: Adaptive, tmp_path: Path, unique: str) -> None:
    use_case = f"jobs-{unique}"
    client.use_cases.create(key=use_case)
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(f'{{"prompt": "q{i}", "completion": "a{i}"}}\n' for i in range(3)))
    uploaded = cli("datasets", "upload", str(rows), "--key", "rows", "--use-case", use_case)
    assert uploaded.returncode == 0, uploaded.stderr
    assert "uploaded rows: 3 rows of kind PROMPT_COMPLETION" in uploaded.stdout
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "q", "completion": "a"}\n{"prompt": \n')
    refused = cli("datasets", "upload", str(bad), "--key", "bad", "--use-case", use_case)
    assert refused.returncode == 1 and "line 2" in refused.stderr, refused.stderr
    listed = cli("datasets", "list", "--use-case", use_case, ADAPTIVE_USE_CASE=use_case).stdout
    assert [line.split()[:3] for line in listed.splitlines()[1:]] == [["rows", "PROMPT_COMPLETION", "3"]]

    for key, source in (("worker", WORKER), ("failing", FAILING), ("sleeper", SLEEPER)):
        (tmp_path / f"{key}.py").write_text(source)
        client.recipes.upload(str(tmp_path / f"{key}.py"), recipe_key=key, use_case=use_case)
    recipes = cli("recipes", "list", ADAPTIVE_USE_CASE=use_case).stdout
    assert {"worker", "failing", "sleeper"} <= {line.split()[0] for line in recipes.splitlines()[1:]}

    job = client.jobs.run("worker", num_gpus=0, args={"dataset": "rows", "steps": 3}, use_case=use_case)
    watched = cli("jobs", "watch", job.id)
    assert watched.returncode == 0, watched.stderr
    assert f"job {job.id} COMPLETED" in watched.stdout
    followed = cli("jobs", "logs", job.id, "--follow")
    assert followed.returncode == 0 and f"loaded 3 rows for job {job.id}" in followed.stdout
    assert followed.stdout.count("loaded 3 rows") == 1  # each line once

    failing = client.jobs.run("failing", num_gpus=0, use_case=use_case)
    failed = cli("jobs", "watch", failing.id)
    assert failed.returncode == 1
    assert failed.stderr.startswith(f"error: job {failing.id} FAILED") and "Traceback" not in failed.stderr

    sleeper = client.jobs.run("sleeper", num_gpus=0, args={"seconds": 120}, use_case=use_case)
    canceled = cli("jobs", "cancel", sleeper.id)
    assert canceled.returncode == 0 and sleeper.id in canceled.stdout
    assert client.jobs.wait(sleeper.id, timeout=60).status == "CANCELED"

    listed_jobs = cli("jobs", "list", "--use-case", use_case).stdout.splitlines()
    assert {line.split()[0] for line in listed_jobs[1:]} == {job.id, failing.id, sleeper.id}


def test_sdk_wait_reports_progress(client: Adaptive, tmp_path: Path, unique: str) -> None:
    from adaptive_engine.sdk.errors import APITimeoutError

    use_case = f"wait-{unique}"
    client.use_cases.create(key=use_case)
    (tmp_path / "rows.jsonl").write_text('{"prompt": "q", "completion": "a"}\n')
    client.datasets.upload(str(tmp_path / "rows.jsonl"), dataset_key="rows", use_case=use_case)
    (tmp_path / "worker.py").write_text(WORKER)
    client.recipes.upload(str(tmp_path / "worker.py"), recipe_key="worker", use_case=use_case)
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    client.recipes.upload(str(tmp_path / "sleeper.py"), recipe_key="sleeper", use_case=use_case)

    seen: list[tuple[str, float]] = []
    job = client.jobs.run("worker", num_gpus=0, args={"dataset": "rows", "steps": 2}, use_case=use_case)
    done = client.jobs.wait(job.id, poll_interval=0.2, on_progress=lambda j: seen.append((j.status, j.progress)))
    assert done.status == "COMPLETED" and done.progress == 1.0
    assert seen[-1] == ("COMPLETED", 1.0) and len(seen) >= 2

    sleeper = client.jobs.run("sleeper", num_gpus=0, args={"seconds": 120}, use_case=use_case)
    try:
        with pytest.raises(APITimeoutError, match="still"):
            client.jobs.wait(sleeper.id, timeout=0.5, poll_interval=0.2)
    finally:
        client.jobs.cancel(sleeper.id)


def test_async_client_waits_with_progress(server: LiveServer, client: Adaptive, tmp_path: Path, unique: str) -> None:
    import asyncio

    from adaptive_engine import AsyncAdaptive
    from tests.jobs.recipes import QUICK

    use_case = f"async-{unique}"
    client.use_cases.create(key=use_case)
    (tmp_path / "quick.py").write_text(QUICK)
    client.recipes.upload(str(tmp_path / "quick.py"), recipe_key="quick", use_case=use_case)
    job = client.jobs.run("quick", num_gpus=0, args={"n": 3}, use_case=use_case)

    async def follow() -> tuple[str, list[str]]:
        statuses: list[str] = []
        async with AsyncAdaptive(server.base_url, api_key=server.api_key) as sdk:
            done = await sdk.jobs.wait(job.id, poll_interval=0.2, on_progress=lambda j: statuses.append(j.status))
        return done.status, statuses

    status, statuses = asyncio.run(follow())
    assert status == "COMPLETED" and statuses[-1] == "COMPLETED"
