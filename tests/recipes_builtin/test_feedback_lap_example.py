"""examples/feedback_lap.py, the lap a user schedules, run as a script against a real server: it trains from the
default model's logged feedback, starts the A/B test that decides the promotion, and a second run while that
test is undecided changes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adaptive_engine import Adaptive
from tests.support import LiveServer, make_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(make_settings(tmp_path_factory.mktemp("data"), builtin_recipes=True)) as server:
        yield server


def _lap(live: LiveServer, *extra: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(REPO / "examples" / "feedback_lap.py"), "--url", live.base_url]
    command += ["--api-key", live.api_key, "--use-case", "support", "--feedback-key", "json_ok", *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)


def test_a_lap_trains_from_the_default_models_feedback_and_starts_the_ab_test(
    live: LiveServer, base_model_dir: Path
) -> None:
    with Adaptive(live.base_url, api_key=live.api_key) as sdk:
        sdk.use_cases.create(key="support")
        sdk.set_default_use_case("support")
        deadline = time.monotonic() + 120
        while "sft" not in {r.key for r in sdk.recipes.list()}:
            assert time.monotonic() < deadline, "built-in recipes were not registered"
            time.sleep(0.5)
        sdk.models.add_local(str(base_model_dir), name="base", key="base-135m")
        sdk.models.attach("base-135m", make_default=True)
        sdk.feedback.register_key("json_ok", kind="bool")
        for i in range(2):
            messages = [{"role": "user", "content": f"Give {i} as JSON."}]
            for text, ok in ((json.dumps({"value": i}), True), (f"the value is {i}", False)):
                sdk.interactions.create(
                    messages=messages,
                    completion=text,
                    model="base-135m",
                    feedbacks=[{"feedback_key": "json_ok", "value": ok}],
                )

        first = _lap(live, "--max-steps", "1")
        assert first.returncode == 0, first.stdout + first.stderr[-3000:]
        assert "lap: from base-135m (the default model), sft on its feedback 'json_ok'" in first.stdout
        new = next(m.key for m in sdk.models.list() if m.key.startswith("support-sft-"))
        model = sdk.models.get(new)
        assert model.is_adapter and model.backbone.key == "base-135m"
        logs = sdk.jobs.logs(sdk.jobs.list(kind=["TRAINING"]).nodes[0].id)
        assert "sft: 2 rows" in logs  # the two interactions the default model's feedback passed
        [test] = sdk.ab_tests.list(active=True)
        assert test.key == f"lap-{new}"

        second = _lap(live, "--max-steps", "1")
        assert second.returncode == 0, second.stderr[-3000:]
        assert "has not decided yet: nothing to do" in second.stdout
        assert [m.key for m in sdk.models.list() if m.key.startswith("support-sft-")] == [new]


def test_held_out_without_a_grader_is_refused_by_name(live: LiveServer) -> None:
    run = _lap(live, "--heldout", "some-dataset")
    assert run.returncode == 2 and "--heldout and --grader go together" in run.stderr
