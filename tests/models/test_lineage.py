"""Model.lineage and Model.backend (what the console's registry shows): the job, recipe, data and base model
behind a trained model, seen only by those who may read that job."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from adaptive_engine import Adaptive
from tests.jobs import recipes
from tests.jobs.helpers import upload, wait_for

QUERY = "query($key: IdOrKey!) { model(idOrKey: $key) { key backend lineage { jobId recipe useCase baseModel args } } }"


def model_of(server: Any, key: str, api_key: str) -> dict[str, Any]:
    body = httpx.post(
        f"{server.base_url}/api/graphql",
        json={"query": QUERY, "variables": {"key": key}},
        headers={"Authorization": f"Bearer {api_key}"},
    ).json()
    assert "errors" not in body, body
    return body["data"]["model"]


def test_a_trained_model_names_its_job_recipe_and_data(
    client: Adaptive, server: Any, tmp_path: Path, unique: str
) -> None:
    use_case = f"lineage-{unique}"
    client.use_cases.create(key=use_case)
    client.set_default_use_case(use_case)
    base = f"base-{unique}"
    client.models.add_external(
        name=base,
        key=base,
        external_model_id="m",
        api_key="sk-none",
        provider="open_ai",
        endpoint="http://127.0.0.1:9/v1",
    )
    rows = tmp_path / "rows.jsonl"
    rows.write_text(json.dumps({"prompt": "q", "completion": "a"}))
    client.datasets.upload(str(rows), "rows")
    upload(client, tmp_path, recipes.WORKER, "worker")
    trained = f"trained-{unique}"
    job = client.jobs.run("worker", num_gpus=0, args={"dataset": "rows", "steps": 1, "model_key": trained})
    assert wait_for(client, job.id).status == "COMPLETED"

    seen = model_of(server, trained, server.api_key)
    assert seen["backend"] == "local"
    assert seen["lineage"] == {
        "jobId": job.id,
        "recipe": "worker",
        "useCase": use_case,
        "baseModel": None,
        "args": {"dataset": "rows", "steps": 1, "model_key": trained},
    }
    assert model_of(server, base, server.api_key) == {"key": base, "backend": "external", "lineage": None}

    # Someone who cannot read the use case sees the model (the registry is shared) but not where it came from.
    team = f"other-{unique}"
    client.teams.create(key=team)
    email = f"outsider-{unique}@example.com"
    client.users.create(email=email, name="Outsider", teams_with_role=[(team, "editor")])
    outsider = client.api_keys.create(name="t", user=email).key
    assert model_of(server, trained, outsider)["lineage"] is None
    # Once the use case is shared with their team, they do.
    client.use_cases.share(use_case, team, "viewer")
    assert model_of(server, trained, outsider)["lineage"]["jobId"] == job.id
