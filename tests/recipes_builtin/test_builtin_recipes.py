"""The built-in recipes as jobs on a real server (SQLite only: training is the slow part, not storage).

Each training job runs one or two optimizer steps of the bundled model (registered here as a local
folder, the converted cache), through our SDK, from what the platform holds: a dataset, logged
interactions selected by feedback, logged metric pairs, a custom grader as reward.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk import errors
from tests.jobs.helpers import wait_for
from tests.support import LiveServer, make_settings

pytestmark = pytest.mark.slow

BUILTINS = {"sft", "dpo", "grpo", "eval"}
TINY = {"max_steps": 1, "batch_size": 2, "lora_rank": 4, "lora_alpha": 8, "max_length": 64}
GRADER_CODE = """
import json
def grade(messages, completion, metadata):
    try:
        return isinstance(json.loads(completion), dict)
    except ValueError:
        return False
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(make_settings(tmp_path_factory.mktemp("data"), builtin_recipes=True)) as server:
        yield server


@pytest.fixture(scope="module")
def sdk(live: LiveServer) -> Iterator[Adaptive]:
    with Adaptive(live.base_url, api_key=live.api_key) as client:
        deadline = time.monotonic() + 120
        while not BUILTINS <= {r.key for r in client.recipes.list(use_case=_use_case(client))}:
            assert time.monotonic() < deadline, "built-in recipes were not registered"
            time.sleep(0.5)
        yield client


def _use_case(client: Adaptive) -> str:
    key = "builtin-recipes"
    try:
        client.use_cases.get(key)
    except errors.NotFoundError:
        client.use_cases.create(key=key)
    client.set_default_use_case(key)
    return key


@pytest.fixture(scope="module")
def base(sdk: Adaptive, base_model_dir: Path) -> str:
    sdk.models.add_local(str(base_model_dir), name="base", key="base-135m")
    return "base-135m"


@pytest.fixture(scope="module")
def traffic(sdk: Adaptive) -> str:
    """Logged interactions scored on a bool key: two prompts, a good and a bad answer each."""
    sdk.feedback.register_key("json_ok", kind="bool")
    sdk.feedback.register_key("never_scored", kind="bool")  # a known key with no feedback under it
    for i in range(2):
        messages = [{"role": "user", "content": f"Give {i} as JSON."}]
        sdk.interactions.create(
            messages=messages,
            completion=json.dumps({"value": i}),
            feedbacks=[{"feedback_key": "json_ok", "value": True}],
        )
        sdk.interactions.create(
            messages=messages, completion=f"the value is {i}", feedbacks=[{"feedback_key": "json_ok", "value": False}]
        )
    return "json_ok"


def _upload(sdk: Adaptive, tmp_path: Path, key: str, rows: list[dict]) -> str:
    path = tmp_path / f"{key}.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    sdk.datasets.upload(str(path), key)
    return key


def _run(sdk: Adaptive, recipe: str, args: dict, limit_s: float = 900):  # noqa: ANN202
    job = sdk.jobs.run(recipe, num_gpus=0, args=args)
    return wait_for(sdk, job.id, limit_s=limit_s)


def test_builtins_are_listed_in_every_use_case(sdk: Adaptive) -> None:
    sdk.use_cases.create(key="another-use-case")
    listed = {r.key: r for r in sdk.recipes.list(use_case="another-use-case")}
    assert BUILTINS <= set(listed)
    schema = sdk.recipes.get("sft", use_case="another-use-case").json_schema
    assert {"output_model_key", "dataset", "feedback_filter", "base_model"} <= set(schema["properties"])


def test_sft_from_feedback_registers_an_adapter_with_lineage(sdk: Adaptive, base: str, traffic: str) -> None:
    job = _run(
        sdk,
        "sft",
        {
            "output_model_key": "sft-from-feedback",
            "base_model": base,
            "feedback_filter": {"feedback_key": traffic, "min_value": 1},
            **TINY,
        },
    )
    assert job.status == "COMPLETED", job.error
    assert job.kind == "TRAINING" and job.progress == 1.0
    assert [m.step for m in job.metrics] == [1] and "loss" in job.metrics[0].values
    model = sdk.models.get("sft-from-feedback")
    assert model.is_adapter and model.backbone.key == base
    logs = sdk.jobs.logs(job.id)
    assert "sft: 2 rows" in logs  # only the two interactions scored True


def test_dpo_from_logged_metric_pairs(sdk: Adaptive, base: str, traffic: str) -> None:
    job = _run(
        sdk,
        "dpo",
        {
            "output_model_key": "dpo-from-pairs",
            "base_model": base,
            "feedback_key": traffic,
            "pairs_from_metric": True,
            **TINY,
        },
    )
    assert job.status == "COMPLETED", job.error
    assert "dpo: 2 pairs" in sdk.jobs.logs(job.id)
    assert sdk.models.get("dpo-from-pairs").is_adapter


def test_dpo_margin_pairs_pool_identical_completions_of_noisy_feedback(sdk: Adaptive, base: str) -> None:
    """One prompt, noisy judgements: the right answer logged three times (one copy judged wrong), a wrong
    answer once judged right, another wrong answer twice judged wrong. Pooled: 2/3, 1, 0. With a margin of
    0.5 the pairs are right>wrong-2 (one per copy of the right answer: 3) and the misjudged wrong>wrong-2
    (1); the misjudged wrong answer is never chosen over the right one (1 - 2/3 < 0.5)."""
    sdk.feedback.register_key("json_noisy", kind="bool")
    messages = [{"role": "user", "content": "Give 7 as JSON."}]
    logged = [('{"value": 7}', True), ('{"value": 7}', True), ('{"value": 7}', False)]
    logged += [("seven", True), ("the value is 7", False), ("the value is 7", False)]
    for completion, value in logged:
        sdk.interactions.create(
            messages=messages, completion=completion, feedbacks=[{"feedback_key": "json_noisy", "value": value}]
        )
    args = {"base_model": base, "feedback_key": "json_noisy", "pairs_from_metric": True, **TINY}
    job = _run(sdk, "dpo", {"output_model_key": "dpo-margin", "min_margin": 0.5, **args})
    assert job.status == "COMPLETED", job.error
    assert "dpo: 4 pairs" in sdk.jobs.logs(job.id)
    strict = _run(sdk, "dpo", {"output_model_key": "dpo-margin-strict", "min_margin": 1.5, **args}, limit_s=300)
    assert strict.status == "FAILED" and "differ by at least 1.5" in strict.error


def test_sft_from_noisy_feedback_keeps_the_completions_people_agree_on(sdk: Adaptive, base: str) -> None:
    """One prompt, noisy judgements: the right answer logged three times (one copy judged wrong), two wrong
    answers each judged right once by mistake, a third wrong answer twice judged wrong. Without pooling,
    ``min_value`` 1 would keep 4 rows, half of them wrong; with ``min_copies`` 2 and ``min_value`` 0.5 the
    pooled scores are 2/3, 1, 1 and 0, and only the right answer has the copies: its 3 rows are kept."""
    sdk.feedback.register_key("json_noisy_sft", kind="bool")
    messages = [{"role": "user", "content": "Give 8 as JSON."}]
    logged = [('{"value": 8}', True), ('{"value": 8}', True), ('{"value": 8}', False)]
    logged += [("eight", True), ("8", True), ("the value is 8", False), ("the value is 8", False)]
    for completion, value in logged:
        sdk.interactions.create(
            messages=messages, completion=completion, feedbacks=[{"feedback_key": "json_noisy_sft", "value": value}]
        )
    selection = {"feedback_key": "json_noisy_sft", "min_value": 0.5, "min_copies": 2}
    job = _run(sdk, "sft", {"output_model_key": "sft-agreed", "base_model": base, "feedback_filter": selection, **TINY})
    assert job.status == "COMPLETED", job.error
    assert "sft: 3 rows" in sdk.jobs.logs(job.id)
    # One copy is no agreement: refused when the job is submitted, naming the field.
    with pytest.raises(errors.ValidationError, match="feedback_filter"):
        sdk.jobs.run(
            "sft",
            num_gpus=0,
            args={"output_model_key": "sft-one-copy", "feedback_filter": {**selection, "min_copies": 1}},
        )


def test_grpo_with_a_custom_grader_as_reward(sdk: Adaptive, base: str, tmp_path: Path) -> None:
    _json_grader(sdk)
    _upload(sdk, tmp_path, "grpo-prompts", [{"prompt": f"Give {i} as JSON."} for i in range(2)])
    job = _run(
        sdk,
        "grpo",
        {
            "output_model_key": "grpo-json",
            "base_model": base,
            "graders": ["is-json"],
            "dataset": "grpo-prompts",
            "num_generations": 2,
            "max_completion_length": 8,
            "max_steps": 2,
            "steps_per_generation": 2,
            "batch_size": 2,
            "lora_rank": 4,
            "lora_alpha": 8,
        },
    )
    assert job.status == "COMPLETED", job.error
    # One round of samples serves both steps: the second measures no reward, and the reported final reward
    # is the first step's, not None.
    assert "reward" in job.metrics[0].values and "reward" not in job.metrics[1].values
    logs = sdk.jobs.logs(job.id)
    assert f"last reward {job.metrics[0].values['reward']}" in logs
    # This base was added as a transformers folder, not a GGUF file: TRL's generate samples, and the log says why
    # (the bundled GGUF base samples with llama.cpp: tests/recipes_builtin/test_training.py, the closed-loop smoke).
    assert "grpo: sampling with TRL's generate: the base model is not a GGUF file" in logs
    assert sdk.models.get("grpo-json").is_adapter


def test_cancelled_training_registers_nothing(sdk: Adaptive, base: str, tmp_path: Path) -> None:
    _upload(sdk, tmp_path, "sft-rows", [{"prompt": f"q{i}", "completion": f"a{i}"} for i in range(4)])
    job = sdk.jobs.run(
        "sft",
        num_gpus=0,
        args={
            "output_model_key": "never-registered",
            "base_model": base,
            "dataset": "sft-rows",
            **{**TINY, "max_steps": 500},
        },
    )
    deadline = time.monotonic() + 600
    while not sdk.jobs.get(job.id).metrics:  # training has started
        assert time.monotonic() < deadline and sdk.jobs.get(job.id).status in ("PENDING", "RUNNING")
        time.sleep(0.5)
    sdk.jobs.cancel(job.id)
    assert wait_for(sdk, job.id).status == "CANCELED"
    with pytest.raises(errors.NotFoundError):
        sdk.models.get("never-registered")


@pytest.mark.parametrize(
    ("recipe", "args", "message"),
    [
        ("sft", {"dataset": "prefs"}, "row 0 is a preference pair"),
        ("sft", {"dataset": "missing"}, "dataset 'missing' not found"),
        (
            "sft",
            {"dataset": "prefs", "feedback_filter": {"feedback_key": "json_ok"}},
            "give exactly one of dataset or feedback_filter",
        ),
        ("sft", {"feedback_filter": {"feedback_key": "json_ok", "min_value": 5}}, "no logged interactions match"),
        ("sft", {"feedback_filter": {"feedback_key": "no-such-key"}}, "unknown feedback key 'no-such-key'"),
        ("sft", {"dataset": "rows", "base_model": "no-such-model"}, "unknown base model 'no-such-model'"),
        ("dpo", {"dataset": "rows"}, "row 0 is not a preference pair"),
        ("dpo", {"feedback_key": "json_ok"}, "no logged preferences"),
        (
            "dpo",
            {"feedback_key": "never_scored", "pairs_from_metric": True},
            "no prompt has completions scored differently on 'never_scored'",
        ),
        ("dpo", {"dataset": "prefs", "base_model": "no-such-model"}, "unknown base model 'no-such-model'"),
        ("dpo", {"feedback_key": "json_ok", "min_margin": 0.5}, "min_margin applies to pairs_from_metric only"),
        ("grpo", {"graders": ["no-such-grader"]}, "unknown grader 'no-such-grader'"),
        (
            "grpo",
            {"graders": ["is-json"], "dataset": "rows", "base_model": "no-such-model"},
            "unknown base model 'no-such-model'",
        ),
        ("grpo", {"graders": ["is-json"], "dataset": "missing"}, "dataset 'missing' not found"),
        ("sft", {"dataset": "rows", "output_model_key": "base-135m"}, "model 'base-135m' already exists"),
    ],
)
def test_bad_input_fails_early_naming_the_problem(
    sdk: Adaptive, base: str, traffic: str, tmp_path: Path, recipe: str, args: dict, message: str
) -> None:
    _upload(sdk, tmp_path, "prefs", [{"prompt": "q", "chosen": "a", "rejected": "b"}]) if not _has(
        sdk, "prefs"
    ) else None
    _upload(sdk, tmp_path, "rows", [{"prompt": "q", "completion": "a"}]) if not _has(sdk, "rows") else None
    _json_grader(sdk)
    job = _run(sdk, recipe, {"output_model_key": "bad-input-model", **args}, limit_s=300)
    assert job.status == "FAILED"
    assert message in job.error
    assert not job.metrics  # it failed before any training step
    with pytest.raises(errors.NotFoundError):
        sdk.models.get("bad-input-model")


def _has(sdk: Adaptive, dataset: str) -> bool:
    return dataset in {d.key for d in sdk.datasets.list()}


def _json_grader(sdk: Adaptive) -> str:
    if "is-json" not in {g.key for g in sdk.graders.list()}:
        sdk.feedback.register_key("is_json", kind="bool")
        sdk.graders.create.custom(key="is-json", feedback_key="is_json", code=GRADER_CODE)
    return "is-json"


def test_eval_grades_models_and_stores_evaluation_completions(sdk: Adaptive, base: str, tmp_path: Path) -> None:
    _json_grader(sdk)
    _upload(sdk, tmp_path, "eval-prompts", [{"prompt": f"Give {i} as JSON."} for i in range(2)])
    sdk.models.deploy(base, wait=True)
    job = _run(
        sdk,
        "eval",
        {
            "models": [base],
            "dataset": "eval-prompts",
            "graders": ["is-json"],
            "samples_per_prompt": 2,
            "temperature": 1.0,
            "max_tokens": 8,
        },
    )
    assert job.status == "COMPLETED", job.error
    assert job.kind == "EVALUATION"
    artifact = next(a for a in job.details.artifacts if a.kind == "EVALUATION")
    target = tmp_path / "evaluation.json"
    sdk.artifacts.download(artifact.id, str(target))
    report = json.loads(target.read_text())
    assert len(report["samples"]) == 4 and {s["model"] for s in report["samples"]} == {base}
    aggregate = report["aggregates"][base]["is-json"]
    assert aggregate["count"] + aggregate["failed"] == 4
    # The completions are stored with source EVALUATION, their scores as feedback under the grader's key.
    stored = sdk.interactions.list(filters={"source": ["EVALUATION"], "labels": [{"key": "job_id", "value": [job.id]}]})
    assert stored.total_count == 4
    assert all(i.source == "EVALUATION" and i.model.key == base for i in stored.nodes)
    assert all(fb.metric.key == "is_json" for i in stored.nodes for fb in i.direct_feedbacks)
    assert sum(len(i.direct_feedbacks) for i in stored.nodes) == aggregate["count"]


def test_eval_refuses_unknown_model(sdk: Adaptive, base: str, tmp_path: Path) -> None:
    _upload(sdk, tmp_path, "eval-prompts-2", [{"prompt": "q"}])
    _json_grader(sdk)
    job = _run(sdk, "eval", {"models": ["no-such-model"], "dataset": "eval-prompts-2", "graders": ["is-json"]})
    assert job.status == "FAILED" and "unknown model 'no-such-model'" in job.error


def test_eval_refuses_unknown_grader(sdk: Adaptive, base: str, tmp_path: Path) -> None:
    _upload(sdk, tmp_path, "eval-prompts-3", [{"prompt": "q"}])
    job = _run(sdk, "eval", {"models": [base], "dataset": "eval-prompts-3", "graders": ["no-such-grader"]})
    assert job.status == "FAILED" and "unknown grader 'no-such-grader'" in job.error
    assert not job.details.artifacts  # nothing was evaluated


def test_arguments_outside_the_schema_are_refused_before_a_job_exists(sdk: Adaptive, base: str) -> None:
    before = sdk.jobs.list().total_count
    with pytest.raises(errors.AdaptiveError, match="output_model_key"):
        sdk.jobs.run("sft", num_gpus=0, args={"dataset": "rows"})  # the model key is missing
    with pytest.raises(errors.AdaptiveError, match="no_such_argument"):
        sdk.jobs.run("sft", num_gpus=0, args={"output_model_key": "x", "dataset": "rows", "no_such_argument": 1})
    assert sdk.jobs.list().total_count == before
