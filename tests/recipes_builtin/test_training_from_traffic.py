"""Training on curated traffic, end to end on a real server (SQLite only: training is the slow part):

- the bundled model serves chat requests through the data plane, feedback is logged on the answers, a dataset
  is built from filters on that traffic (one chosen answer per prompt), and the sft recipe trains on it;
- an A/B test's preference duels become a PREFERENCE dataset in one call, and the dpo recipe trains on it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adaptive_engine import Adaptive
from tests.jobs.helpers import wait_for
from tests.support import LiveServer, make_settings

pytestmark = pytest.mark.slow

TINY = {"max_steps": 1, "batch_size": 2, "lora_rank": 4, "lora_alpha": 8, "max_length": 64}
PROMPTS = ["Say one.", "Say two.", "Say three."]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(make_settings(tmp_path_factory.mktemp("data"), builtin_recipes=True)) as server:
        yield server


@pytest.fixture(scope="module")
def sdk(live: LiveServer, base_model_dir: Path) -> Iterator[Adaptive]:
    with Adaptive(live.base_url, api_key=live.api_key) as client:
        client.use_cases.create(key="traffic")
        client.set_default_use_case("traffic")
        deadline = time.monotonic() + 120
        while not {"sft", "dpo"} <= {r.key for r in client.recipes.list()}:
            assert time.monotonic() < deadline, "built-in recipes were not registered"
            time.sleep(0.5)
        client.models.add_local(str(base_model_dir), name="base", key="base-135m")
        client.models.add_local(str(base_model_dir), name="challenger", key="challenger-135m")
        yield client


def _train(sdk: Adaptive, recipe: str, args: dict) -> str:
    job = wait_for(sdk, sdk.jobs.run(recipe, num_gpus=0, args={**args, **TINY}).id, limit_s=900)
    assert job.status == "COMPLETED", job.error
    return sdk.jobs.logs(job.id)


def test_sft_on_a_dataset_built_from_served_traffic(sdk: Adaptive) -> None:
    sdk.models.attach("base-135m", wait=True, make_default=True)
    sdk.feedback.register_key("helpful", kind="bool")
    for prompt in PROMPTS:
        response = sdk.chat.create(
            messages=[{"role": "user", "content": prompt}],
            n=2,
            max_tokens=6,
            temperature=1.0,
            labels={"origin": "chat"},
        )
        first, second = response.choices
        assert first.completion_id and second.completion_id
        sdk.feedback.log_metric(value=True, completion_id=first.completion_id, feedback_key="helpful")
        sdk.feedback.log_metric(value=False, completion_id=second.completion_id, feedback_key="helpful")
    filters = {"labels": [{"key": "origin", "value": ["chat"]}], "feedbacks": [{"metric": "helpful", "eq": 1}]}
    preview = sdk.datasets.preview_from_filters("PROMPT_COMPLETION", filters=filters, metrics=["helpful"])
    assert preview.count == len(PROMPTS)
    dataset = sdk.datasets.create_from_filters("served-sft", "PROMPT_COMPLETION", filters=filters, metrics=["helpful"])
    assert dataset.records == len(PROMPTS) and dataset.source == "FILTERED"
    logs = _train(
        sdk, "sft", {"output_model_key": "sft-from-traffic", "base_model": "base-135m", "dataset": "served-sft"}
    )
    assert f"sft: {len(PROMPTS)} rows" in logs
    assert sdk.models.get("sft-from-traffic").is_adapter


def test_dpo_from_an_ab_tests_duels_in_one_call(sdk: Adaptive) -> None:
    sdk.models.attach("base-135m", wait=False)
    sdk.models.attach("challenger-135m", wait=False)
    sdk.feedback.register_key("preferred", kind="bool")
    sdk.feedback.link("preferred")
    sdk.ab_tests.create("duel", "preferred", ["base-135m", "challenger-135m"], feedback_type="preference")
    messages = [{"role": "user", "content": "Name a colour."}]
    for i in range(3):
        base = sdk.interactions.create(
            messages=messages, completion=f"grey {i}", model="base-135m", ab_campaign="duel"
        ).completion_id
        challenger = sdk.interactions.create(
            messages=messages, completion=f"bright blue {i}", model="challenger-135m", ab_campaign="duel"
        ).completion_id
        sdk.feedback.log_preference("preferred", challenger, base)
    dataset = sdk.datasets.create_from_filters("duels", "PREFERENCE", filters={"ab_campaign": "duel"})
    assert dataset.kind == "PREFERENCE" and dataset.records == 3
    logs = _train(sdk, "dpo", {"output_model_key": "dpo-from-duels", "base_model": "base-135m", "dataset": "duels"})
    assert "dpo: 3 pairs" in logs
