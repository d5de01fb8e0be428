"""Lifecycle around jobs: the artifacts queries, the recipe schema parser, and deleting a trained model (its
weights, written by the job into the server's file store, are freed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk.errors import ConflictError, NotFoundError, ValidationError
from tests.jobs import recipes
from tests.jobs.helpers import upload, wait_for


def test_artifacts_and_deleting_the_trained_model(client: Adaptive, use_case: str, tmp_path: Path, unique: str) -> None:
    upload(client, tmp_path, recipes.WORKER, "worker")
    job = client.jobs.run("worker", num_gpus=0, args={"dataset": "rows", "steps": 1, "model_key": f"made-{unique}"})
    done = wait_for(client, job.id)
    assert done.status == "COMPLETED", done.error

    listed = client.artifacts.list()
    assert sorted((a.kind, a.name) for a in listed) == [("EVALUATION", "summary.json"), ("MODEL", f"made-{unique}")]
    assert [a.name for a in client.artifacts.list(kinds=["EVALUATION"])] == ["summary.json"]
    assert len(client.artifacts.list(job_id=job.id)) == 2
    assert client.artifacts.list(job_id="0190b7d0-0000-7000-8000-000000000000") == []
    summary = next(a for a in listed if a.name == "summary.json")
    assert client.artifacts.get(summary.id).name == "summary.json"
    client.use_cases.create(key=f"other-{unique}")
    with pytest.raises(NotFoundError):
        client.artifacts.get(summary.id, use_case=f"other-{unique}")
    assert client.artifacts.list(use_case=f"other-{unique}") == []

    # The job's model: attached to the use case, so refused; once detached, deleted with its weights.
    model_path = Path(next(a for a in listed if a.kind == "MODEL").metadata["path"])
    assert model_path.is_dir()
    with pytest.raises(ConflictError, match=use_case):
        client.models.delete(f"made-{unique}")
    client.models.detach(f"made-{unique}", use_case=use_case)
    assert "weights removed" in client.models.delete(f"made-{unique}")
    assert not model_path.exists()


def test_parse_recipe_schema(client: Adaptive) -> None:
    parsed = client.recipes.parse_schema(recipes.WORKER)
    schema = parsed["schema"]
    assert set(schema["properties"]) >= {"dataset", "steps", "model_key"} and "dataset" in schema["required"]
    with pytest.raises(ValidationError):
        client.recipes.parse_schema("def broken(:\n")
    with pytest.raises(ValidationError, match="recipeContent"):
        client.recipes.parse_schema("   ")
