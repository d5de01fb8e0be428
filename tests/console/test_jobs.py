"""The jobs pages in the browser: the list (status, progress, server-side filters), running a recipe from a
form made from its JSON schema (checked before sending, the server's messages next to the fields), a job's
live log, metric curves and artifacts, cancel; a viewer follows jobs but gets no control."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from adaptive_engine import Adaptive
from tests.console.conftest import Console, sign_in
from tests.console.world import TRAINER

SLEEPER = '''
import asyncio
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Config(InputConfig):
    seconds: float = 300

@recipe_main
async def main(config: Config, ctx: RecipeContext) -> None:
    ctx.report_progress(0.25, "waiting")
    print("sleeping", flush=True)
    await asyncio.sleep(config.seconds)
'''

FAILING = '''
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Config(InputConfig):
    pass

@recipe_main
def main(config: Config, ctx: RecipeContext) -> None:
    raise ValueError("the data is not what I expected")
'''

TICKER = '''
import asyncio
from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main

class Config(InputConfig):
    ticks: int = 8

@recipe_main
async def main(config: Config, ctx: RecipeContext) -> None:
    for i in range(1, config.ticks + 1):
        print(f"tick {i}", flush=True)
        await asyncio.sleep(1.0)
    print("waiting for the end", flush=True)
    await asyncio.sleep(300)
'''

FINAL = {"COMPLETED", "FAILED", "CANCELED"}


def wait_for(sdk: Adaptive, job_id: str, statuses: set[str], limit_s: float = 180.0) -> Any:
    deadline = time.monotonic() + limit_s
    while (job := sdk.jobs.get(job_id)).status not in statuses:
        assert time.monotonic() < deadline, f"job stuck in {job.status}"
        time.sleep(0.2)
    return job


@pytest.fixture(scope="module")
def recipes(console: Console, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The recipes uploaded to the sample use case, and one failed job (so the list has a past)."""
    folder = tmp_path_factory.mktemp("recipes")
    use_case = console.sample.use_case
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        for key, source in (("trainer", TRAINER), ("sleeper", SLEEPER), ("failing", FAILING), ("ticker", TICKER)):
            path = folder / f"{key}.py"
            path.write_text(source)
            sdk.recipes.upload(str(path), recipe_key=key, use_case=use_case)
        failed = sdk.jobs.run("failing", num_gpus=0, use_case=use_case, name="broken-run")
        wait_for(sdk, failed.id, FINAL)
    return {"failed": failed.id}


def test_run_a_recipe_from_its_schema_and_follow_the_job(page: Any, console: Console, recipes: dict[str, str],
                                                          tmp_path: Path) -> None:
    sample = console.sample
    sign_in(page, console.server.api_key, "/jobs")
    expect(page.get_by_role("row", name=re.compile("broken-run"))).to_contain_text("failed")
    page.get_by_role("link", name="Run a recipe").click()
    page.get_by_label("Use case").select_option(sample.use_case)
    page.get_by_label("Recipe").select_option("trainer")
    form = page.get_by_role("form", name="Recipe arguments")
    expect(form).to_contain_text("Fits a toy model")
    # Defaults come from the schema; rules show as hints.
    expect(form.get_by_label("steps")).to_have_value("4")
    expect(form.get_by_label("optimizer")).to_have_value("adam")
    expect(form.get_by_label("shuffle")).to_be_checked()
    expect(form).to_contain_text("training steps · ≥ 1, ≤ 20")
    # Checked before sending: nothing reaches the server.
    form.get_by_label("steps").fill("0")
    form.get_by_label("learning_rate").fill("fast")
    form.get_by_role("button", name="Run").click()
    expect(form.get_by_text("steps must be at least 1")).to_be_visible()
    expect(form.get_by_text("learning_rate must be a number")).to_be_visible()
    expect(form.get_by_label("steps")).to_have_attribute("aria-invalid", "true")
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        assert sdk.jobs.list(use_case=sample.use_case).total_count == 1
    # What only the server checks comes back as its own message, next to its field.
    form.get_by_label("steps").fill("3")
    form.get_by_label("learning_rate").fill("0.25")
    form.get_by_label("optimizer").select_option("sgd")
    form.get_by_label("tags").fill("first\nsecond")
    form.get_by_label("weights").fill('{"a": "heavy"}')
    form.get_by_role("button", name="Run").click()
    expect(page.get_by_role("alert")).to_contain_text("invalid args: field 'weights.a'")
    expect(form.get_by_text("weights a: 'heavy' is not of type 'number'")).to_be_visible()
    form.get_by_label("weights").fill('{"a": 2.5}')
    form.get_by_label("Give lora").check()
    form.get_by_label("rank").fill("4")
    form.get_by_label("Job name").fill("toy-training")
    form.get_by_role("button", name="Run").click()

    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}$"))
    expect(page.get_by_role("heading", name="toy-training")).to_be_visible()
    # The page follows the job until it ends: progress, log, metric curves, artifacts.
    expect(page.locator(".page-head").get_by_text("completed")).to_be_visible(timeout=180_000)
    expect(page.get_by_role("progressbar", name="Progress")).to_have_attribute("value", "1")
    log = page.get_by_role("log", name="Job log")
    expect(log).to_contain_text("training with sgd, tags ['first', 'second'], lora rank=4")
    expect(log).to_contain_text("step 3 loss 0.667")
    metrics = page.get_by_role("region", name="Metrics")
    for key in ("loss", "reward"):
        expect(metrics.get_by_role("img", name=f"{key} per step").locator("canvas")).to_be_visible()
    expect(metrics).to_contain_text("loss last 0.667")
    arguments = page.get_by_role("region", name="Arguments")
    expect(arguments).to_contain_text('"learning_rate": 0.25')
    with page.expect_download() as download:
        page.get_by_role("link", name="Download report.json").click()
    saved = tmp_path / "report.json"
    download.value.save_as(saved)
    assert saved.read_text() == '{"steps": 3, "weights": {"a": 2.5}}'
    job_id = page.url.rsplit("/", 1)[1]
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        job = sdk.jobs.get(job_id)
        assert job.status == "COMPLETED" and job.details.args["tags"] == ["first", "second"]
    # The list filters on the server.
    page.goto("/jobs?status=FAILED")
    expect(page.get_by_role("link", name="broken-run")).to_be_visible()
    expect(page.get_by_role("link", name="toy-training")).to_have_count(0)
    page.get_by_label("Status").select_option("COMPLETED")
    expect(page.get_by_role("link", name="toy-training")).to_be_visible()
    expect(page.get_by_text("1 in all")).to_be_visible()
    page.get_by_label("Kind").select_option("TRAINING")
    expect(page.get_by_text("No job matches these filters")).to_be_visible()


def test_cancel_a_running_job_and_a_viewer_only_follows(page: Any, chromium: Any, console: Console,
                                                        recipes: dict[str, str]) -> None:
    sample = console.sample
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        job = sdk.jobs.run("sleeper", num_gpus=0, use_case=sample.use_case, name="long-wait")
        wait_for(sdk, job.id, {"RUNNING"} | FINAL)
    viewer = chromium.new_context(base_url=console.server.base_url).new_page()
    sign_in(viewer, sample.viewer_key, "/jobs")
    expect(viewer.get_by_role("link", name="long-wait")).to_be_visible()
    expect(viewer.get_by_role("link", name="Run a recipe")).to_have_count(0)
    viewer.get_by_role("link", name="long-wait").click()
    expect(viewer.get_by_role("heading", name="long-wait")).to_be_visible()
    expect(viewer.get_by_role("main").get_by_role("button")).to_have_count(0)
    viewer.goto("/jobs/new")
    expect(viewer.get_by_text("You may not run jobs in any use case")).to_be_visible()
    viewer.context.close()

    sign_in(page, console.server.api_key, f"/jobs/{job.id}")
    expect(page.get_by_role("log", name="Job log")).to_contain_text("sleeping", timeout=60_000)
    expect(page.get_by_role("progressbar", name="Progress")).to_have_attribute("value", "0.25")
    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator(".page-head").get_by_text("canceled")).to_be_visible()
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        assert sdk.jobs.get(job.id).status == "CANCELED"


def test_the_log_streams_while_the_job_runs(page: Any, console: Console, recipes: dict[str, str]) -> None:
    """The job page follows a running job's log through the server-sent events of the REST API: lines the
    job prints after the page opened appear without a reload, and the stream ends with the job."""
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        job = sdk.jobs.run("ticker", num_gpus=0, use_case=console.sample.use_case, name="ticker-run")
        wait_for(sdk, job.id, {"RUNNING"} | FINAL)
        with page.expect_response(re.compile(r"/api/v1/jobs/[0-9a-f-]+/logs/stream")) as stream:
            sign_in(page, console.server.api_key, f"/jobs/{job.id}")
        assert stream.value.status == 200
        assert stream.value.headers["content-type"].startswith("text/event-stream")
        log = page.get_by_role("log", name="Job log")
        expect(log).to_contain_text("tick 1", timeout=30_000)
        first = log.inner_text()
        # Printed after the page drew its first lines: they arrive on the open stream while the job runs.
        expect(log).to_contain_text("tick 6", timeout=30_000)
        assert "tick 6" not in first
        assert sdk.jobs.get(job.id).status == "RUNNING"
        expect(log).to_contain_text("waiting for the end", timeout=30_000)
        page.get_by_role("button", name="Cancel job").click()
        expect(page.locator(".page-head").get_by_text("canceled")).to_be_visible()
        expect(log).to_contain_text("tick 8")
        assert sdk.jobs.get(job.id).status == "CANCELED"


def read_events(lines: Any, until: set[str]) -> list[tuple[str, str | None, Any]]:
    """(event, id, data) of a server-sent event stream's lines, up to the first event named in ``until``."""
    import json

    events: list[tuple[str, str | None, Any]] = []
    name, ident, data = "message", None, None
    for line in lines:
        if line == "":
            if data is not None:
                events.append((name, ident, json.loads(data)))
                if name in until:
                    return events
            name, ident, data = "message", None, None
        elif line.startswith("event: "):
            name = line[len("event: "):]
        elif line.startswith("id: "):
            ident = line[len("id: "):]
        elif line.startswith("data: "):
            data = line[len("data: "):]
    return events


def test_the_log_stream_of_the_api(console: Console, recipes: dict[str, str]) -> None:
    """GET /api/v1/jobs/{id}/logs/stream: the log and the status as events until the job ends; ids are byte
    offsets a reconnect resumes from; bad input is refused by name; a revoked key ends the stream."""
    import httpx

    base, key = console.server.base_url, console.server.api_key
    failed = recipes["failed"]
    with httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
        whole = http.get(f"/jobs/{failed}/logs", params={"tail": 10_000}).text
        with http.stream("GET", f"/jobs/{failed}/logs/stream", params={"tail": 10_000}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            events = read_events(response.iter_lines(), {"end"})
        assert events[0] == ("status", None, {"status": "FAILED", "progress": events[0][2]["progress"], "message": None})
        assert events[-1][0] == "end" and events[-1][2] == {"status": "FAILED"}
        logs = [e for e in events if e[0] == "log"]
        text = "".join(data for _, _, data in logs)
        assert "the data is not what I expected" in text and text.rstrip("\n") == whole.rstrip("\n")
        assert int(events[-1][1]) == len(text.encode())
        # A reconnect names the last offset it got: the stream goes on from there.
        with http.stream("GET", f"/jobs/{failed}/logs/stream", headers={"Last-Event-ID": "10"}) as response:
            resumed = "".join(d for n, _, d in read_events(response.iter_lines(), {"end"}) if n == "log")
        assert resumed == text.encode()[10:].decode()
        # tail=2: the last two lines only.
        with http.stream("GET", f"/jobs/{failed}/logs/stream", params={"tail": 2}) as response:
            last = "".join(d for n, _, d in read_events(response.iter_lines(), {"end"}) if n == "log")
        assert last.splitlines() == text.splitlines()[-2:]
        refused = http.get(f"/jobs/{failed}/logs/stream", headers={"Last-Event-ID": "soon"})
        assert refused.status_code == 400 and "Last-Event-ID" in refused.json()["error"]["message"]
        refused = http.get(f"/jobs/{failed}/logs/stream", params={"tail": -1})
        assert refused.status_code in (400, 422) and "tail" in refused.text
        missing = http.get("/jobs/00000000-0000-0000-0000-000000000000/logs/stream")
        assert missing.status_code == 404

    with Adaptive(base, api_key=key) as sdk:
        job = sdk.jobs.run("sleeper", num_gpus=0, use_case=console.sample.use_case, name="followed-then-revoked")
        wait_for(sdk, job.id, {"RUNNING"} | FINAL)
        minted = sdk.api_keys.create(name="follower")
        try:
            with httpx.Client(base_url=f"{base}/api/v1", headers={"Authorization": f"Bearer {minted.key}"},
                              timeout=30) as http:
                with http.stream("GET", f"/jobs/{job.id}/logs/stream") as response:
                    lines = response.iter_lines()
                    assert next(lines) == "event: status"
                    sdk.api_keys.revoke(minted.api_key.id)
                    started = time.monotonic()
                    rest = read_events(lines, {"stopped", "end"})
            assert rest[-1][0] == "stopped" and rest[-1][2]["code"] == "UNAUTHENTICATED", rest
            assert time.monotonic() - started < 15
        finally:
            sdk.jobs.cancel(job.id)
