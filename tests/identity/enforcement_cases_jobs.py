"""Permission table rows of recipes, jobs, artifacts, A/B tests, compute pools and graders (swept by
identity; each domain may move its rows to its own folder)."""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from adaptive_engine.sdk.errors import ConflictError, NotFoundError, ServerError, ValidationError
from tests.enforcement import Case, gql, rest

RECIPE = """
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Config(InputConfig):
    note: str = "x"

@recipe_main
async def main(config: Config, ctx: RecipeContext) -> None:
    ctx.save_artifact("note.txt", config.note.encode())
    ctx.report_progress(1.0, "done")
"""
GRADER_CODE = "def grade(messages, completion, metadata):\n    return 1.0\n"
FINAL = {"COMPLETED", "FAILED", "CANCELED"}


def _recipe_file() -> str:
    path = Path(tempfile.mkdtemp()) / "recipe.py"
    path.write_text(RECIPE)
    return str(path)


def _wait(admin, job_id: str):
    deadline = time.monotonic() + 180
    while True:
        job = admin.jobs.get(job_id)
        if job.status in FINAL or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def _setup(w) -> None:
    a, s = w.admin, w.suffix
    a.recipes.upload(_recipe_file(), recipe_key=f"rc-{s}", use_case=w.uc_a)
    a.recipes.upload(_recipe_file(), recipe_key=f"rc-victim-{s}", use_case=w.uc_a)
    job = _wait(a, a.jobs.run(f"rc-{s}", num_gpus=0, use_case=w.uc_a).id)
    assert job.status == "COMPLETED", job.error
    w.extra["job"] = job.id
    data = gql(a, "query J($id: UUID!) { job(id: $id) { details { artifacts { id } } } }", {"id": job.id})
    w.extra["artifact"] = data["job"]["details"]["artifacts"][0]["id"]
    # Graders and A/B tests need feedback keys and models on the use case.
    gql(
        a,
        "mutation M($input: MetricCreate!) { createMetric(input: $input) { key } }",
        {"input": {"key": f"g-{s}", "name": "g", "kind": "SCALAR"}},
    )
    gql(
        a,
        "mutation L($input: MetricLink!) { linkMetric(input: $input) { key } }",
        {"input": {"useCase": w.uc_a, "metric": f"g-{s}"}},
    )
    for key in (f"gr-{s}", f"gr-victim-{s}"):
        a.graders.create.custom(key=key, feedback_key=f"g-{s}", code=GRADER_CODE, use_case=w.uc_a)
    w.extra["models"] = _attach_models(w)
    a.ab_tests.create(f"{w.uc_a}-ab", feedback_key=f"g-{s}", models=w.extra["models"], use_case=w.uc_a)


def _attach_models(w) -> list[str]:
    """Two chat models attached to uc_a, written straight to the database (no model registry here)."""
    from adaptive_engine.server.db import models as orm
    from tests.ab_tests.support import in_db

    keys = [f"abm{i}-{w.suffix}" for i in range(2)]

    async def work(session) -> None:
        use_case = (
            await session.execute(__import__("sqlalchemy").select(orm.UseCase).where(orm.UseCase.key == w.uc_a))
        ).scalar_one()
        for key in keys:
            model = orm.Model(key=key, name=key, kind="chat", status="ONLINE")
            session.add(model)
            await session.flush()
            session.add(orm.ModelService(use_case_id=use_case.id, model_id=model.id, is_default=False))

    in_db(w.server, work)
    return keys


def _pick(w, uc: str, name: str) -> str:
    return w.extra[name] if uc == w.uc_a else str(uuid.uuid4())


def _recipes(a, w):
    return sorted((r.key, r.name) for r in a.recipes.list(use_case=w.uc_a))


def _graders(a, w):
    return sorted((g.key, g.name, bool(getattr(g, "locked", False))) for g in a.graders.list(use_case=w.uc_a))


def _jobs(a, w):
    data = gql(
        a,
        "query J($f: ListJobsFilterInput) { jobs(page: {first: 100}, filter: $f) { nodes { id status } } }",
        {"f": {"useCase": w.uc_a}},
    )
    return sorted(j["id"] for j in data["jobs"]["nodes"])


def _campaigns(a, w):
    return sorted((c.key, c.status) for c in a.ab_tests.list(use_case=w.uc_a))


RUNTIME = {
    "progress": {"progress": 0.5},
    "metrics": {"step": 1, "values": {"loss": 1.0}},
    "artifacts": None,
    "models": {"key": "m", "path": "x"},
}


def _runtime_call(what: str, body: object) -> Callable[..., object]:
    """A POST to the job runtime route ``what``, its values bound now (the comprehension's variables move on)."""
    return lambda c, w, uc: rest(c, "POST", f"/jobs/{_pick(w, uc, 'job')}/{what}", json=body)


PASSED = (ConflictError, ValidationError)  # the job is not running (any more): the check passed


CASES = [
    # Recipes.
    Case(
        ("Query.custom_recipe",),
        on_use_case=lambda c, w, uc: c.recipes.get(f"rc-{w.suffix}", use_case=uc),
        allowed_as=("viewer",),
        denied_as=(),
        setup=_setup,
    ),
    Case(
        ("Query.custom_recipes",),
        on_use_case=lambda c, w, uc: c.recipes.list(use_case=uc),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Mutation.create_custom_recipe",),
        on_use_case=lambda c, w, uc: c.recipes.upload(_recipe_file(), recipe_key=w.fresh("rc"), use_case=uc),
        snapshot=_recipes,
    ),
    Case(
        ("Mutation.update_custom_recipe",),
        on_use_case=lambda c, w, uc: c.recipes.update(f"rc-{w.suffix}", name=w.fresh("name"), use_case=uc),
        snapshot=_recipes,
    ),
    Case(
        ("Mutation.delete_custom_recipe",),
        on_use_case=lambda c, w, uc: c.recipes.delete(f"rc-victim-{w.suffix}", use_case=uc),
        snapshot=_recipes,
    ),
    # Jobs and artifacts.
    Case(
        ("Query.job",),
        on_use_case=lambda c, w, uc: c.jobs.get(_pick(w, uc, "job")),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(("Query.jobs",), on_use_case=lambda c, w, uc: c.jobs.list(use_case=uc), allowed_as=("viewer",), denied_as=()),
    Case(
        ("Mutation.create_job",),
        on_use_case=lambda c, w, uc: c.jobs.run(f"rc-{w.suffix}", num_gpus=0, use_case=uc),
        snapshot=_jobs,
    ),
    Case(
        ("Mutation.cancel_job",),
        on_use_case=lambda c, w, uc: c.jobs.cancel(_pick(w, uc, "job")),
        allowed_errors=PASSED,
        snapshot=lambda a, w: a.jobs.get(w.extra["job"]).status,
    ),
    Case(
        ("GET /api/v1/jobs/{job_id}/logs",),
        on_use_case=lambda c, w, uc: rest(c, "GET", f"/jobs/{_pick(w, uc, 'job')}/logs", raw=True),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    *[
        Case(
            (f"POST /api/v1/jobs/{{job_id}}/{what}",),
            on_use_case=_runtime_call(what, body)
            if (body := RUNTIME[what]) is not None
            else (
                lambda c, w, uc: rest(
                    c,
                    "POST",
                    f"/jobs/{_pick(w, uc, 'job')}/artifacts",
                    params={"name": "a.txt"},
                    content=b"x",
                    headers={"Content-Type": "application/octet-stream"},
                )
            ),
            allowed_errors=PASSED,
        )
        for what in RUNTIME
    ],
    Case(
        ("POST /api/v1/jobs/{job_id}/models/upload",),
        on_use_case=lambda c, w, uc: rest(
            c,
            "POST",
            f"/jobs/{_pick(w, uc, 'job')}/models/upload",
            params={"key": w.fresh("up")},
            content=b"weights",
            headers={"Content-Type": "application/octet-stream"},
        ),
        allowed_errors=PASSED,
    ),
    # Training runtime routes: a finished job is refused with CONFLICT/INVALID_INPUT once the guard passed.
    Case(
        ("GET /api/v1/jobs/{job_id}/model-weights/{model}",),
        on_use_case=lambda c, w, uc: rest(c, "GET", f"/jobs/{_pick(w, uc, 'job')}/model-weights/none"),
        allowed_errors=PASSED + (NotFoundError,),
    ),
    Case(
        ("POST /api/v1/jobs/{job_id}/evaluation-completions",),
        on_use_case=lambda c, w, uc: rest(c, "POST", f"/jobs/{_pick(w, uc, 'job')}/evaluation-completions", json=[]),
        allowed_errors=PASSED,
    ),
    Case(
        ("GET /api/v1/artifacts/{artifact_id}/download",),
        on_use_case=lambda c, w, uc: rest(c, "GET", f"/artifacts/{_pick(w, uc, 'artifact')}/download", raw=True),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    # A/B tests.
    Case(
        ("Query.ab_campaign",),
        on_use_case=lambda c, w, uc: c.ab_tests.get(f"{uc}-ab"),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Query.ab_campaigns",),
        on_use_case=lambda c, w, uc: c.ab_tests.list(use_case=uc),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Mutation.cancel_ab_campaign",),
        on_use_case=lambda c, w, uc: c.ab_tests.cancel(f"{uc}-ab"),
        snapshot=_campaigns,
    ),
    Case(
        ("Mutation.create_ab_campaign",),
        on_use_case=lambda c, w, uc: c.ab_tests.create(
            w.fresh("ab"), feedback_key=f"g-{w.suffix}", models=w.extra["models"], use_case=uc
        ),
        snapshot=_campaigns,
    ),
    # Compute pools.
    Case(
        ("Query.compute_pools",),
        op=lambda c, w: c.compute_pools.list(),
        allowed_as=("viewer", "outsider"),
        denied_as=(),
    ),
    Case(
        ("Query.harmony_groups",),
        op=lambda c, w: gql(c, "query { harmonyGroups { key } }"),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Mutation.resize_inference_partition",),
        op=lambda c, w: gql(
            c,
            "mutation R($i: ResizePartitionInput!) { resizeInferencePartition(input: $i) }",
            {"i": {"harmonyGroup": "local", "size": 1}},
        ),
        allowed_as=("admin",),
        denied_as=("editor", "viewer"),
        allowed_errors=(ValidationError, ConflictError, NotFoundError),
    ),
    # Graders.
    Case(
        ("Query.grader",),
        on_use_case=lambda c, w, uc: c.graders.get(grader_key=f"gr-{w.suffix}", use_case=uc),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Query.graders",),
        on_use_case=lambda c, w, uc: c.graders.list(use_case=uc),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Mutation.create_grader",),
        on_use_case=lambda c, w, uc: c.graders.create.custom(
            key=w.fresh("gr"), feedback_key=f"g-{w.suffix}", code=GRADER_CODE, use_case=uc
        ),
        snapshot=_graders,
    ),
    Case(
        ("Mutation.update_grader",),
        on_use_case=lambda c, w, uc: c.graders.set_online_grading(grader_key=f"gr-{w.suffix}", rate=0.0, use_case=uc),
        snapshot=_graders,
    ),
    Case(
        ("Mutation.lock_grader",),
        on_use_case=lambda c, w, uc: c.graders.lock(grader_key=f"gr-{w.suffix}", locked=False, use_case=uc),
        snapshot=_graders,
    ),
    Case(
        ("Mutation.delete_grader",),
        on_use_case=lambda c, w, uc: c.graders.delete(grader_key=f"gr-victim-{w.suffix}", use_case=uc),
        snapshot=_graders,
    ),
    Case(
        ("POST /api/v1/graders/grade",),
        on_use_case=lambda c, w, uc: c.graders.grade(
            grader_key=f"gr-{w.suffix}", messages=[{"role": "user", "content": "q"}], completion="a", use_case=uc
        ),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Query.remote_envs",),
        op=lambda c, w: gql(c, "query { remoteEnvs { key } }"),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Mutation.test_remote_env",),
        op=lambda c, w: c.graders.test_external_endpoint("http://127.0.0.1:9/none"),
        allowed_as=("editor",),
        denied_as=("viewer",),
    ),
    # Adding needs a live reward server (tests/graders has one): here the editor gets past the guard to the
    # unreachable address; the viewer does not.
    Case(
        ("Mutation.add_remote_env",),
        op=lambda c, w: gql(
            c,
            "mutation A($i: RemoteEnvCreate!) { addRemoteEnv(input: $i) { key } }",
            {"i": {"url": "http://127.0.0.1:9/none", "key": w.fresh("env")}},
        ),
        allowed_as=("editor",),
        denied_as=("viewer",),
        allowed_errors=(ServerError, ValidationError),
    ),
    Case(
        ("Mutation.remove_remote_env",),
        op=lambda c, w: gql(c, "mutation R($k: IdOrKey!) { removeRemoteEnv(idOrKey: $k) }", {"k": w.fresh("env")}),
        allowed_as=("editor",),
        denied_as=("viewer",),
        allowed_errors=(NotFoundError,),
    ),
]
