"""A machine that cannot sandbox (here: no bwrap on PATH): the server says so at start and refuses user code
with a typed error naming the reason, unless ADAPTIVE_ALLOW_UNSANDBOXED_CODE=true."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk import errors
from tests.jobs import recipes
from tests.jobs.helpers import upload, wait_for
from tests.support import LiveServer, make_settings

GRADER = "def grade(messages, completion, metadata):\n    return 1.0\n"


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data dir with a recipe and a custom grader, stored by a server that could sandbox them."""
    data = tmp_path / "data"
    with LiveServer(make_settings(data)) as live, Adaptive(live.base_url, api_key=live.api_key) as sdk:
        sdk.use_cases.create("refusal")
        sdk.set_default_use_case("refusal")
        upload(sdk, tmp_path, recipes.QUICK, "quick")
        sdk.graders.create.custom(key="one", feedback_key="one", code=GRADER)
    return data


def no_bwrap(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def test_without_a_sandbox_user_code_is_refused(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    no_bwrap(monkeypatch, tmp_path)
    with caplog.at_level(logging.INFO, logger="adaptive_engine.sandbox"):
        with LiveServer(make_settings(data)) as live, Adaptive(live.base_url, api_key=live.api_key) as sdk:
            assert "user code cannot be sandboxed on this machine: 'bwrap' was not found" in caplog.text
            sdk.set_default_use_case("refusal")
            with pytest.raises(errors.ServerError) as refused:
                upload(sdk, tmp_path, recipes.QUICK, "quick-again")
            assert refused.value.code == "SANDBOX_UNAVAILABLE"
            assert (
                "loading the recipe refused: this server cannot sandbox user code ('bwrap' was not found"
                in refused.value.message
            )
            assert "ADAPTIVE_ALLOW_UNSANDBOXED_CODE=true" in refused.value.message
            assert "quick-again" not in {r.key for r in sdk.recipes.list()}
            with pytest.raises(errors.ServerError) as refused:
                sdk.graders.grade(grader_key="one", messages=[], completion="x")
            assert (
                refused.value.code == "SANDBOX_UNAVAILABLE"
                and "running a custom grader refused" in refused.value.message
            )
            job = wait_for(sdk, sdk.jobs.run("quick", num_gpus=0).id)
            assert job.status == "FAILED"
            assert "running a recipe job refused: this server cannot sandbox user code" in job.error


def test_the_operator_may_run_user_code_bare(
    data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    no_bwrap(monkeypatch, tmp_path)
    with caplog.at_level(logging.INFO, logger="adaptive_engine.sandbox"):
        settings = make_settings(data, allow_unsandboxed_code=True)
        with LiveServer(settings) as live, Adaptive(live.base_url, api_key=live.api_key) as sdk:
            assert "USER CODE RUNS UNSANDBOXED (ADAPTIVE_ALLOW_UNSANDBOXED_CODE=true)" in caplog.text
            sdk.set_default_use_case("refusal")
            upload(sdk, tmp_path, recipes.QUICK, "quick-bare")
            assert sdk.graders.grade(grader_key="one", messages=[], completion="x").score == 1.0
            job = wait_for(sdk, sdk.jobs.run("quick-bare", num_gpus=0, args={"n": 7}).id)
            assert job.status == "COMPLETED", job.error
            assert "quick 7" in sdk.jobs.logs(job.id)
