"""Jobs on the local pool through our SDK: the whole path from recipe to artifacts and models."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk import errors
from tests.jobs import recipes
from tests.jobs.helpers import upload, wait_for
from tests.support import process_alive, process_tree


def test_job_runs_to_completion(client: Adaptive, use_case: str, tmp_path: Path, unique: str) -> None:
    recipe = upload(client, tmp_path, recipes.WORKER, "worker")
    job = client.jobs.run(
        "worker", num_gpus=0, args={"dataset": "rows", "steps": 3, "model_key": f"trained-{unique}"}, name="first run"
    )
    assert job.status in ("PENDING", "RUNNING") and job.name == "first run" and job.recipe.id == recipe.id
    done = wait_for(client, job.id)
    assert done.status == "COMPLETED", done.error
    assert done.progress == 1.0 and done.started_at and done.ended_at and done.duration_ms is not None
    assert [m.step for m in done.metrics] == [0, 1, 2] and done.metrics[2].values == {"loss": pytest.approx(1 / 3)}
    assert done.stages[0].status == "DONE"
    kinds = sorted((a.kind, a.name) for a in done.details.artifacts)
    assert kinds == [("EVALUATION", "summary.json"), ("MODEL", f"trained-{unique}")]
    summary = next(a for a in done.details.artifacts if a.name == "summary.json")
    target = tmp_path / "summary.json"
    client.artifacts.download(summary.id, str(target))
    assert json.loads(target.read_text()) == {"rows": 3, "datasets": ["rows"]}
    logs = client.jobs.logs(job.id)
    assert "loaded 3 rows" in logs
    assert "client read timeout 3600.0" in logs  # a job's long calls (an eval's chat on a busy CPU) are waited for
    import httpx

    query = (
        "query($id: UUID!) { job(id: $id) { details { artifacts { kind byproducts { __typename"
        " ... on EvaluationByproducts { evalResults { mean stddev count modelService { key } metric {"
        " key } } } } } } } }"
    )
    body = httpx.post(
        f"{client.base_url}/api/graphql",
        json={"query": query, "variables": {"id": job.id}},
        headers={"Authorization": f"Bearer {client.api_key}"},
    ).json()
    evaluation = next(a for a in body["data"]["job"]["details"]["artifacts"] if a["kind"] == "EVALUATION")
    results = {(r["modelService"]["key"], r["metric"]["key"]): r for r in evaluation["byproducts"]["evalResults"]}
    assert results[("m", "acc")]["mean"] == 0.75 and results[("m2", "judge")]["stddev"] == 0.1
    # The produced model is registered with its lineage and attached to the use case.
    model = next(s.model for s in client.use_cases.get().model_services if s.key == f"trained-{unique}")
    assert model.name == "Trained"


def test_job_key_is_revoked_when_the_job_ends(client: Adaptive, use_case: str, tmp_path: Path, server) -> None:
    upload(client, tmp_path, recipes.QUICK, "quick")
    job = wait_for(client, client.jobs.run("quick", num_gpus=0).id)
    assert job.status == "COMPLETED"

    import asyncio

    from sqlalchemy import select

    from adaptive_engine.server.db.engine import create_engine, create_sessionmaker
    from adaptive_engine.server.db.models import ApiKey

    async def keys() -> list[ApiKey]:
        engine = create_engine(server.settings.resolved_database_url)
        try:
            async with create_sessionmaker(engine)() as session:
                return list(
                    (
                        await session.execute(select(ApiKey).where(ApiKey.job_id == __import__("uuid").UUID(job.id)))
                    ).scalars()
                )
        finally:
            await engine.dispose()

    minted = asyncio.run(keys())
    assert len(minted) == 1 and minted[0].revoked_at is not None


def test_failed_job_reports_error_and_log_tail(client: Adaptive, use_case: str, tmp_path: Path) -> None:
    upload(client, tmp_path, recipes.FAILING, "failing")
    job = wait_for(client, client.jobs.run("failing", num_gpus=0).id)
    assert job.status == "FAILED"
    assert job.error.startswith("ValueError: the data is not what I expected")
    assert "about to fail" in job.error and "Traceback" in job.error
    assert job.stages[0].status == "ERROR"


def test_cancel_kills_the_process_group(client: Adaptive, use_case: str, tmp_path: Path, server) -> None:
    upload(client, tmp_path, recipes.SLEEPER, "sleeper")
    job = client.jobs.run("sleeper", num_gpus=0)
    running = wait_for(client, job.id, {"RUNNING"})
    pid_file = server.app.state.job_runner.job_dir(__import__("uuid").UUID(job.id)) / "work" / "child.pid"
    import time

    while not pid_file.exists() or client.jobs.get(job.id).progress < 0.1:
        time.sleep(0.1)
    # The job's processes as this machine numbers them (child.pid is a number of the job's PID namespace).
    handle = server.app.state.job_runner.tracked[__import__("uuid").UUID(job.id)][1]
    processes = process_tree(int(handle.split(":")[0]))
    assert len(processes) >= 3, processes  # the sandbox, the recipe, its `sleep`
    canceled = client.jobs.cancel(running.id)
    assert canceled.status == "CANCELED" and canceled.stages[0].status == "CANCELLED"
    deadline = time.monotonic() + 30
    while any(process_alive(pid) for pid in processes):
        assert time.monotonic() < deadline, "the recipe's child process outlived the cancel"
        time.sleep(0.1)
    assert wait_for(client, job.id).status == "CANCELED"
    with pytest.raises(errors.ConflictError, match="already canceled"):
        client.jobs.cancel(job.id)


def test_bad_requests_change_nothing(client: Adaptive, use_case: str, tmp_path: Path) -> None:
    upload(client, tmp_path, recipes.WORKER, "worker")
    before = client.jobs.list(use_case=use_case).total_count
    with pytest.raises(errors.ValidationError) as caught:
        client.jobs.run("worker", num_gpus=0, args={"steps": "many"})
    message = caught.value.message
    assert "field '(args)': 'dataset' is a required property (rule: required)" in message
    assert "field 'steps': 'many' is not of type 'integer' (rule: type)" in message
    with pytest.raises(errors.ValidationError, match=r"field '\(args\)'.*unexpected.*rule: additionalProperties"):
        client.jobs.run("worker", num_gpus=0, args={"dataset": "rows", "typo": 1})
    with pytest.raises(errors.NotFoundError, match="recipe 'nope' not found"):
        client.jobs.run("nope", num_gpus=0)
    with pytest.raises(errors.ValidationError, match="exceeds the job partition of compute pool 'local'"):
        client.jobs.run("worker", num_gpus=1, args={"dataset": "rows"})
    with pytest.raises(errors.NotFoundError, match="compute pool 'elsewhere' not found"):
        client.jobs.run("worker", num_gpus=0, args={"dataset": "rows"}, compute_pool="elsewhere")
    with pytest.raises(errors.NotFoundError):
        client.jobs.get("00000000-0000-4000-8000-000000000000")
    assert client.jobs.list(use_case=use_case).total_count == before


def test_list_pagination_and_filters(client: Adaptive, use_case: str, tmp_path: Path) -> None:
    upload(client, tmp_path, recipes.QUICK, "quick")
    ids = [client.jobs.run("quick", num_gpus=0, args={"n": i}).id for i in range(5)]
    newest_first = list(reversed(ids))
    page1 = client.jobs.list(first=2, use_case=use_case)
    assert page1.total_count == 5 and [j.id for j in page1.nodes] == newest_first[:2]
    assert page1.page_info.has_next_page and not page1.page_info.has_previous_page
    page2 = client.jobs.list(first=2, after=page1.page_info.end_cursor, use_case=use_case)
    assert [j.id for j in page2.nodes] == newest_first[2:4] and page2.page_info.has_previous_page
    page3 = client.jobs.list(first=2, after=page2.page_info.end_cursor, use_case=use_case)
    assert [j.id for j in page3.nodes] == newest_first[4:] and not page3.page_info.has_next_page
    back = client.jobs.list(last=2, before=page3.page_info.start_cursor, use_case=use_case)
    assert [j.id for j in back.nodes] == newest_first[2:4]
    assert client.jobs.list(use_case=use_case, kind=["TRAINING"]).total_count == 0
    assert client.jobs.list(use_case=use_case, kind=["CUSTOM"]).total_count == 5
    with pytest.raises(errors.ValidationError, match="invalid cursor"):
        client.jobs.list(after="garbage", use_case=use_case)
    for job_id in ids:
        assert wait_for(client, job_id).status == "COMPLETED"


def test_compute_pools(client: Adaptive) -> None:
    pools = client.compute_pools.list()
    local = next(p for p in pools if p.key == "local")
    assert local.capabilities == ["INFERENCE", "JOB"]
    group = local.harmony_groups[0]
    assert group.status == "ONLINE" and group.key == "local-0" and group.num_cpus == os.cpu_count()
    results = client.compute_pools.resize_inference_partition("local", group.world_size + 1)
    assert results[0].success is False and "exceeds the capacity" in results[0].error
    results = client.compute_pools.resize_inference_partition("local", group.world_size)
    assert results[0].success is True
    assert client.compute_pools.list()[0].harmony_groups[0].inference_partition_size == group.world_size
    client.compute_pools.resize_inference_partition("local", 0)
    with pytest.raises(ValueError, match="not found"):
        client.compute_pools.resize_inference_partition("nowhere", 0)


def test_job_key_sees_only_its_use_case(client: Adaptive, use_case: str, tmp_path: Path, unique: str) -> None:
    client.use_cases.create(key=f"elsewhere-{unique}")
    upload(client, tmp_path, recipes.SNOOP, "snoop")
    job = wait_for(client, client.jobs.run("snoop", num_gpus=0, args={"other": f"elsewhere-{unique}"}).id)
    assert job.status == "COMPLETED", job.error
    assert "other use case hidden" in client.jobs.logs(job.id)


async def test_async_client(server, use_case: str, tmp_path: Path) -> None:
    from adaptive_engine import AsyncAdaptive

    async with AsyncAdaptive(server.base_url, api_key=server.api_key) as sdk:
        sdk.set_default_use_case(use_case)
        assert [d.key for d in await sdk.datasets.list()] == ["rows"]
        path = tmp_path / "sleepy.py"
        path.write_text(recipes.SLEEPER)
        await sdk.recipes.upload(str(path))
        job = await sdk.jobs.run("sleepy", num_gpus=0)
        page = await sdk.jobs.list(first=1)
        assert page.nodes[0].id == job.id
        assert (await sdk.compute_pools.list())[0].key == "local"
        assert (await sdk.jobs.cancel(job.id)).status == "CANCELED"


def test_invalid_args_name_each_field_for_forms(client: Adaptive, server, use_case: str, tmp_path: Path) -> None:
    """The console puts the server's own messages next to each field of a recipe's form: details.fields."""
    import httpx

    upload(client, tmp_path, recipes.WORKER, "worker")
    mutation = "mutation Run($input: JobInput!) { createJob(input: $input) { id } }"
    args = {"steps": "many", "model_key": 3}
    answer = httpx.post(
        f"{server.base_url}/api/graphql",
        headers={"Authorization": f"Bearer {server.api_key}"},
        json={
            "query": mutation,
            "variables": {"input": {"recipe": "worker", "useCase": use_case, "args": args, "numGpus": 0}},
        },
    ).json()
    error = answer["errors"][0]
    assert error["extensions"]["code"] == "INVALID_INPUT"
    fields = error["extensions"]["details"]["fields"]
    assert {"path": ["dataset"], "message": "'dataset' is a required property", "rule": "required"} in fields
    assert {"path": ["steps"], "message": "'many' is not of type 'integer'", "rule": "type"} in fields
    assert any(f["path"] == ["model_key"] and f["rule"] == "anyOf" for f in fields)
    assert len(error["extensions"]["details"]["errors"]) == len(fields)
    assert client.jobs.list(use_case=use_case).total_count == 0
