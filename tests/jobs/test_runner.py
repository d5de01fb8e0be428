"""The job runner's guarantees: pool capacity, orphans after a restart, job-scoped access, built-ins."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk import errors
from tests.jobs import recipes
from tests.jobs.helpers import upload, wait_for
from tests.support import LiveServer, make_settings


def on_server_loop(live: LiveServer, coroutine: Any) -> Any:
    """Run a coroutine on the live server's own event loop (where its engine and runner live)."""
    loop = live.app.state.job_runner._task.get_loop()
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result(timeout=120)


def test_pool_capacity_queues_jobs(tmp_path: Path) -> None:
    with (
        LiveServer(make_settings(tmp_path / "data", local_job_slots=1)) as live,
        Adaptive(live.base_url, api_key=live.api_key) as sdk,
    ):
        sdk.use_cases.create("cap")
        sdk.set_default_use_case("cap")
        upload(sdk, tmp_path, recipes.SLEEPER, "sleeper")
        upload(sdk, tmp_path, recipes.QUICK, "quick")
        sleeper = sdk.jobs.run("sleeper", num_gpus=0)
        wait_for(sdk, sleeper.id, {"RUNNING"})
        queued = sdk.jobs.run("quick", num_gpus=0)
        on_server_loop(live, live.app.state.job_runner.run_once())
        assert sdk.jobs.get(queued.id).status == "PENDING"
        assert sdk.jobs.cancel(sleeper.id).status == "CANCELED"
        assert wait_for(sdk, queued.id).status == "COMPLETED"
        # A canceled PENDING job never starts.
        blocker = sdk.jobs.run("sleeper", num_gpus=0)
        wait_for(sdk, blocker.id, {"RUNNING"})
        never = sdk.jobs.run("quick", num_gpus=0)
        assert sdk.jobs.cancel(never.id).status == "CANCELED"
        sdk.jobs.cancel(blocker.id)
        on_server_loop(live, live.app.state.job_runner.run_once())
        job = sdk.jobs.get(never.id)
        assert job.status == "CANCELED" and job.started_at is None


def test_orphans_are_failed_at_start(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with LiveServer(make_settings(data)) as live, Adaptive(live.base_url, api_key=live.api_key) as sdk:
        sdk.use_cases.create("orphans")
        sdk.set_default_use_case("orphans")
        upload(sdk, tmp_path, recipes.SLEEPER, "sleeper")
        job = sdk.jobs.run("sleeper", num_gpus=0)
        wait_for(sdk, job.id, {"RUNNING"})
        # Past its one call to the server: a call cut by the stop would fail the job with its own error.
        while sdk.jobs.get(job.id).progress < 0.1:
            time.sleep(0.1)
    # A graceful stop ends local runs and says so.
    db = sqlite3.connect(data / "engine.db")
    status, error = db.execute("SELECT status, error FROM jobs WHERE id = ?", (uuid.UUID(job.id).hex,)).fetchone()
    assert status == "FAILED" and "server stopped" in error
    # A crash leaves the row RUNNING: the next start must not.
    db.execute(
        "UPDATE jobs SET status = 'RUNNING', error = NULL, ended_at = NULL WHERE id = ?", (uuid.UUID(job.id).hex,)
    )
    db.commit()
    db.close()
    with LiveServer(make_settings(data)) as live, Adaptive(live.base_url, api_key=live.api_key) as sdk:
        again = sdk.jobs.get(job.id)
        assert again.status == "FAILED" and "server restarted" in again.error and again.ended_at


def test_other_users_cannot_see_jobs_or_artifacts(
    client: Adaptive, server: LiveServer, tmp_path: Path, unique: str
) -> None:
    client.use_cases.create(f"priv-{unique}")
    client.set_default_use_case(f"priv-{unique}")
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"prompt": "x"}\n')
    client.datasets.upload(str(rows), "rows")
    upload(client, tmp_path, recipes.WORKER, "worker")
    job = wait_for(client, client.jobs.run("worker", num_gpus=0, args={"dataset": "rows", "steps": 1}).id)
    assert job.status == "COMPLETED", job.error
    artifact = job.details.artifacts[0]

    from adaptive_engine.server.auth.keys import (
        display_prefix,
        generate_api_key,
        hash_api_key,
    )
    from adaptive_engine.server.db.models import ApiKey, User
    from adaptive_engine.server.db.session import unit_of_work

    key = generate_api_key()

    async def outsider() -> None:
        async with unit_of_work(server.app.state.sessionmaker) as session:
            user = User(email=f"outsider-{unique}@example.com", name="Outsider")
            session.add(user)
            await session.flush()
            session.add(ApiKey(user_id=user.id, name="t", prefix=display_prefix(key), key_hash=hash_api_key(key)))

    on_server_loop(server, outsider())
    with Adaptive(server.base_url, api_key=key) as other:
        with pytest.raises(errors.NotFoundError):
            other.artifacts.download(artifact.id, str(tmp_path / "stolen"))
        with pytest.raises(errors.NotFoundError):
            other.jobs.get(job.id)
        with pytest.raises(errors.NotFoundError):
            other.jobs.cancel(job.id)
        assert job.id not in [j.id for j in other.jobs.list().nodes]
    assert not (tmp_path / "stolen").exists()
    with pytest.raises(errors.NotFoundError):
        client.artifacts.download(str(uuid.uuid4()), str(tmp_path / "none"))


def test_builtin_recipes_are_global_and_read_only(
    client: Adaptive, server: LiveServer, tmp_path: Path, unique: str
) -> None:
    from adaptive_engine.server.domains.recipes.builtin import sync_builtin_recipes

    folder = tmp_path / "builtin"
    folder.mkdir()
    key = f"bi_{unique}"
    (folder / f"{key}.py").write_text(
        '"""A built-in for tests.\n\nMore text."""\nJOB_KIND = "EVALUATION"\n' + recipes.QUICK
    )
    (folder / "_private.py").write_text("x = 1\n")
    platform = server.app.state
    assert on_server_loop(
        server,
        sync_builtin_recipes(platform.settings, platform.sessionmaker, platform.file_store, platform.sandbox, folder),
    ) == [key]
    assert (
        on_server_loop(
            server,
            sync_builtin_recipes(
                platform.settings, platform.sessionmaker, platform.file_store, platform.sandbox, folder
            ),
        )
        == []
    )
    client.use_cases.create(f"bi-{unique}")
    client.set_default_use_case(f"bi-{unique}")
    recipe = next(r for r in client.recipes.list() if r.key == key)
    assert recipe.builtin and recipe.global_ and not recipe.editable
    assert recipe.description == "A built-in for tests."
    job = wait_for(client, client.jobs.run(key, num_gpus=0, args={"n": 2}).id)
    assert job.status == "COMPLETED" and job.kind == "EVALUATION"
    assert client.jobs.list(kind=["EVALUATION"]).total_count == 1
    with pytest.raises(errors.ConflictError, match="built in"):
        client.recipes.update(key, name="mine now")
    with pytest.raises(errors.ConflictError, match="built in"):
        client.recipes.delete(key)


def test_gpu_ranks_come_from_the_job_partition() -> None:
    from adaptive_engine.server.db.models import ComputePool, HarmonyGroup
    from adaptive_engine.server.jobs.runner import free_ranks

    pool = ComputePool(key="gpus", name="gpus", executor="local", capabilities=["JOB"])
    pool.harmony_groups = [
        HarmonyGroup(key="gpus-0", status="ONLINE", world_size=4, inference_partition=1, job_slots=4)
    ]
    assert free_ranks(pool, 0, set()) == []
    assert free_ranks(pool, 2, set()) == [1, 2]
    assert free_ranks(pool, 1, {1, 2}) == [3]
    assert free_ranks(pool, 2, {1, 2}) is None


def test_inference_partition_limits_gpu_jobs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with LiveServer(make_settings(data)) as live, Adaptive(live.base_url, api_key=live.api_key) as sdk:
        # Pretend the machine has 2 GPUs (detection found none here); the next start detects again.
        db = sqlite3.connect(data / "engine.db")
        db.execute("UPDATE harmony_groups SET world_size = 2 WHERE key = 'local-0'")
        db.commit()
        db.close()
        sdk.use_cases.create("gpus")
        sdk.set_default_use_case("gpus")
        upload(sdk, tmp_path, recipes.QUICK, "quick")
        assert [r.success for r in sdk.compute_pools.resize_inference_partition("local", 1)] == [True]
        with pytest.raises(errors.ValidationError, match=r"num_gpus 2 exceeds the job partition .* \(1 GPUs\)"):
            sdk.jobs.run("quick", num_gpus=2)
        job = wait_for(sdk, sdk.jobs.run("quick", num_gpus=1).id)
        assert job.status == "COMPLETED" and job.num_gpus == 1
        assert [r.success for r in sdk.compute_pools.resize_inference_partition("local", 0)] == [True]
        group = sdk.compute_pools.list()[0].harmony_groups[0]
        assert (group.inference_partition_size, group.job_partition_size) == (0, 2)


def test_offline_pool_refuses_jobs(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with (
        LiveServer(make_settings(data, ray_address="http://127.0.0.1:9")) as live,
        Adaptive(live.base_url, api_key=live.api_key) as sdk,
    ):
        assert {p.key for p in sdk.compute_pools.list()} == {"local", "ray"}
        sdk.use_cases.create("offline")
    with LiveServer(make_settings(data)) as live, Adaptive(live.base_url, api_key=live.api_key) as sdk:
        sdk.set_default_use_case("offline")
        upload(sdk, tmp_path, recipes.QUICK, "quick")
        ray = next(p for p in sdk.compute_pools.list() if p.key == "ray")
        assert ray.harmony_groups[0].status == "OFFLINE"
        with pytest.raises(errors.ServerError, match="compute pool 'ray' is offline"):
            sdk.jobs.run("quick", num_gpus=0, compute_pool="ray")
        assert sdk.jobs.list().total_count == 0


BIG_ARTIFACT = """
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Config(InputConfig):
    size: int

@recipe_main
def main(config: Config, ctx: RecipeContext) -> None:
    ctx.save_artifact("big.bin", b"x" * config.size)
"""


def test_artifacts_are_not_held_to_the_request_size_limit(tmp_path: Path) -> None:
    with (
        LiveServer(make_settings(tmp_path / "data", max_request_bytes=10_000)) as live,
        Adaptive(live.base_url, api_key=live.api_key) as sdk,
    ):
        sdk.use_cases.create("big")
        sdk.set_default_use_case("big")
        upload(sdk, tmp_path, BIG_ARTIFACT, "big")
        job = wait_for(sdk, sdk.jobs.run("big", num_gpus=0, args={"size": 50_000}).id)
        assert job.status == "COMPLETED", job.error
        sdk.artifacts.download(job.details.artifacts[0].id, str(tmp_path / "big.bin"))
        assert (tmp_path / "big.bin").stat().st_size == 50_000
        # Ordinary requests still are.
        rows = tmp_path / "rows.jsonl"
        rows.write_text('{"prompt": "%s"}\n' % ("x" * 20_000))
        with pytest.raises(errors.ValidationError, match="exceeds the limit"):
            sdk.datasets.upload(str(rows), "rows")
