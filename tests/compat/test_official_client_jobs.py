"""The official adaptive-sdk client against our server: datasets, recipes, jobs, artifacts, compute pools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

adaptive_sdk = pytest.importorskip("adaptive_sdk")


@pytest.fixture
def official(server):
    return adaptive_sdk.Adaptive(base_url=server.base_url, api_key=server.api_key)


@pytest.fixture
def use_case(official, unique: str) -> str:
    official.use_cases.create(key=f"offjobs-{unique}", name="Official jobs")
    official.set_default_use_case(f"offjobs-{unique}")
    return f"offjobs-{unique}"


def test_datasets_upload_get_list_delete(official, use_case: str, tmp_path: Path) -> None:
    path = tmp_path / "prefs.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}], "chosen": "a", "rejected": "b"} for i in range(3)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    created = official.datasets.upload(str(path), "prefs", name="Preferences")
    assert created.kind.value == "PREFERENCE" and created.records == 3 and created.name == "Preferences"
    assert official.datasets.get("prefs").id == created.id
    assert [d.key for d in official.datasets.list()] == ["prefs"]
    assert official.datasets.delete("prefs") is True
    assert official.datasets.list() == []


def test_datasets_chunked_upload_over_5mb(official, use_case: str, tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    line = json.dumps({"prompt": "p" * 1000, "completion": "c" * 1000}) + "\n"
    count = (5 * 1024 * 1024) // len(line) + 10
    path.write_text(line * count)
    created = official.datasets.upload(str(path), "big")
    assert created.records == count and created.kind.value == "PROMPT_COMPLETION"


RECIPE = """
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Config(InputConfig):
    rounds: int = 1
    label: str = "x"

@recipe_main
async def main(config: Config, ctx: RecipeContext) -> None:
    ctx.log_metrics(0, {"score": 1.0})
    ctx.save_artifact("result.txt", f"{config.label} x{config.rounds}".encode())
    ctx.save_artifact("eval.json", b"{}", kind="EVALUATION", metadata={"eval_results": [
        {"model_service": {"key": "m1", "name": "Model 1"}, "metric": {"key": "acc", "name": "Accuracy"},
         "mean": 0.8, "min": 0.0, "max": 1.0, "stddev": 0.4, "count": 10, "sum": 8.0}]})
"""

SLOW = """
import asyncio
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Config(InputConfig):
    pass

@recipe_main
async def main(config: Config, ctx: RecipeContext) -> None:
    await asyncio.sleep(300)
"""


def _wait(official, job_id: str, statuses: set[str]):
    import time

    deadline = time.monotonic() + 180
    while True:
        job = official.jobs.get(job_id)
        if job.status.value in statuses:
            return job
        assert time.monotonic() < deadline, f"job stuck in {job.status}"
        time.sleep(0.2)


def test_recipes_upload_update_sample_delete(official, use_case: str, tmp_path: Path) -> None:
    file = tmp_path / "scorer.py"
    file.write_text(RECIPE)
    recipe = official.recipes.upload(str(file), labels={"team": "ml"}, description="scores")
    assert recipe.key == "scorer" and recipe.json_schema["properties"]["rounds"]["default"] == 1
    folder = tmp_path / "proj"
    folder.mkdir()
    (folder / "entry.py").write_text(RECIPE)
    from_folder = official.recipes.upload(str(folder), entrypoint="entry.py")
    assert from_folder.key == "proj/entry"
    sample = official.recipes.generate_sample_input("scorer")
    assert set(sample) <= {"rounds", "label"}
    updated = official.recipes.update("scorer", name="Scorer", labels=[("team", "research")])
    assert updated.name == "Scorer" and updated.labels[0].value == "research"
    assert official.recipes.get("scorer").description == "scores"
    assert sorted(r.key for r in official.recipes.list() if not r.builtin) == ["proj/entry", "scorer"]
    assert official.recipes.delete("proj/entry") is True


def test_jobs_run_get_list_cancel_and_artifacts(official, use_case: str, tmp_path: Path) -> None:
    from adaptive_sdk.graphql_client import CursorPageInput, ListJobsFilterInput

    (tmp_path / "scorer.py").write_text(RECIPE)
    (tmp_path / "slow.py").write_text(SLOW)
    official.recipes.upload(str(tmp_path / "scorer.py"))
    official.recipes.upload(str(tmp_path / "slow.py"))
    job = official.jobs.run("scorer", num_gpus=0, args={"rounds": 3, "label": "hi"}, name="compat")
    done = _wait(official, str(job.id), {"COMPLETED", "FAILED"})
    assert done.status.value == "COMPLETED", done.error
    artifact = next(a for a in done.details.artifacts if a.name == "result.txt")
    assert artifact.kind.value == "CUSTOM" and artifact.status.value == "READY"
    scores = done.eval_results
    assert [(r.model_key, r.model_name) for r in scores] == [("m1", "Model 1")]
    assert scores[0].scores[0].metric_name == "Accuracy" and scores[0].scores[0].mean == 0.8
    target = tmp_path / "result.txt"
    official.artifacts.download(str(artifact.id), str(target))
    assert target.read_text() == "hi x3"

    slow = official.jobs.run("slow", num_gpus=0)
    _wait(official, str(slow.id), {"RUNNING"})
    canceled = official.jobs.cancel(str(slow.id))
    assert canceled.status.value == "CANCELED"

    # jobs.list of the official client cannot parse its own result: call its generated operation.
    page = official._gql_client.list_jobs(
        page=CursorPageInput(first=1), filter=ListJobsFilterInput(useCase=use_case), order=[]
    ).jobs
    assert page.total_count == 2 and [str(n.id) for n in page.nodes] == [str(slow.id)]
    assert page.page_info.has_next_page
    rest = official._gql_client.list_jobs(
        page=CursorPageInput(first=5, after=page.page_info.end_cursor),
        filter=ListJobsFilterInput(useCase=use_case),
        order=[],
    ).jobs
    assert [str(n.id) for n in rest.nodes] == [str(job.id)]


def test_compute_pools(official) -> None:
    pools = official.compute_pools.list()
    local = next(p for p in pools if p.key == "local")
    group = local.harmony_groups[0]
    assert group.status.value == "ONLINE"
    results = official.compute_pools.resize_inference_partition("local", group.world_size)
    assert [r.success for r in results] == [True]
    results = official.compute_pools.resize_inference_partition("local", group.world_size + 1)
    assert results[0].success is False and "exceeds the capacity" in results[0].error
