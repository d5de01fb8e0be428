"""The model pages in the browser: the registry (status, backend, use cases), the lineage of a model a job
trained (base model, job, recipe, data), attach / make default / detach and the compute config; a viewer
sees the registry and the lineage but no control."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from adaptive_engine import Adaptive
from tests.console.conftest import Console, sign_in
from tests.console.world import TUNER

TUNED = "support-tuned"


@pytest.fixture(scope="module")
def tuned(console: Console, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A model trained by a job from the sample's first model (attached to the sample use case); the job id."""
    path = tmp_path_factory.mktemp("recipes") / "tuner.py"
    path.write_text(TUNER)
    sample = console.sample
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        sdk.recipes.upload(str(path), recipe_key="tuner", use_case=sample.use_case)
        job = sdk.jobs.run("tuner", num_gpus=0, use_case=sample.use_case,
                           args={"dataset": "faq", "base_model": sample.models[0], "output_model_key": TUNED})
        deadline = time.monotonic() + 180
        while (done := sdk.jobs.get(job.id)).status not in ("COMPLETED", "FAILED", "CANCELED"):
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert done.status == "COMPLETED", done.error
    return job.id


def test_registry_and_lineage(page: Any, console: Console, tuned: str) -> None:
    sample = console.sample
    sign_in(page, console.server.api_key)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Models").click()
    expect(page.get_by_role("heading", name="Models")).to_be_visible()
    base_row = page.get_by_role("row", name=re.compile(f"^{sample.models[0]} "))
    expect(base_row).to_contain_text("external")
    expect(base_row).to_contain_text("open_ai")
    expect(base_row.get_by_role("link", name="Support bot")).to_be_visible()
    tuned_row = page.get_by_role("row", name=re.compile("^Support tuned "))
    expect(tuned_row).to_contain_text("local")
    expect(tuned_row.get_by_role("link", name=sample.models[0])).to_be_visible()
    # The lineage: the base model, and under it what a job trained from it, on which data.
    lineage = page.get_by_role("region", name="Lineage")
    expect(lineage.get_by_role("listitem").filter(has_text=sample.models[0]).first).to_contain_text(
        f"{TUNED} · job ran tuner on dataset faq")
    # The status filter runs on the server.
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        statuses = {m.key: m.online for m in sdk.models.list()}
    page.get_by_label("Status").select_option(statuses[TUNED])
    expect(page.get_by_role("link", name="Support tuned")).to_be_visible()
    for key, status in statuses.items():
        if status != statuses[TUNED]:
            expect(page.locator("tbody td > div.mono").filter(has_text=re.compile(f"^{re.escape(key)}$"))).to_have_count(0)
    page.get_by_role("link", name="Support tuned").click()
    expect(page).to_have_url(re.compile(f"/models/{TUNED}$"))
    model_lineage = page.get_by_role("region", name="Lineage")
    expect(model_lineage).to_contain_text(f"Base model{sample.models[0]}")
    expect(model_lineage).to_contain_text("running tuner in support-bot")
    expect(model_lineage).to_contain_text("dataset faq")
    model_lineage.get_by_role("link", name=re.compile("^job ")).click()
    expect(page).to_have_url(re.compile(f"/jobs/{tuned}$"))
    expect(page.get_by_role("region", name="Artifacts").get_by_role("link", name=TUNED)).to_be_visible()


def test_attach_make_default_detach_and_compute_config(page: Any, console: Console, tuned: str) -> None:
    sample = console.sample
    sign_in(page, console.server.api_key, f"/models/{TUNED}")
    use_cases = page.get_by_role("region", name="Use cases")
    expect(use_cases.get_by_role("row", name=re.compile("Support bot"))).to_contain_text("no")
    attach = use_cases.get_by_role("form", name="Attach to a use case")
    attach.get_by_label("Use case to attach to").select_option(sample.empty_use_case)
    attach.get_by_role("button", name="Attach").click()
    expect(use_cases.get_by_role("row", name=re.compile("Drafts"))).to_be_visible()
    use_cases.get_by_role("button", name="Make default in Support bot").click()
    expect(use_cases.get_by_role("row", name=re.compile("Support bot"))).to_contain_text("default")
    expect(use_cases.get_by_role("button", name="Make default in Support bot")).to_have_count(0)
    use_cases.get_by_role("button", name="Detach from Drafts").click()
    expect(use_cases.get_by_role("row", name=re.compile("Drafts"))).to_have_count(0)
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        services = {s.key: s.is_default for s in sdk.use_cases.get(sample.use_case).model_services}
        assert services[TUNED] and not services[sample.models[0]]
        assert TUNED not in {s.key for s in sdk.use_cases.get(sample.empty_use_case).model_services}
    compute = page.get_by_role("form", name="Compute config")
    compute.get_by_label("Max sequence length").fill("4096")
    compute.get_by_role("button", name="Save compute config").click()
    expect(compute.get_by_role("status")).to_have_text("Saved.")
    expect(page.get_by_text("max sequence 4096")).to_be_visible()
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        assert sdk.models.get(TUNED).compute_config.max_seq_len == 4096
    # A refused change shows the server's message.
    compute.get_by_label("Tensor parallel (GPUs)").fill("65")
    compute.get_by_role("button", name="Save compute config").click()
    expect(compute.get_by_role("alert")).to_have_text("tp must be between 1 and 64")


def test_viewer_sees_the_registry_and_lineage_but_no_control(page: Any, console: Console, tuned: str) -> None:
    sample = console.sample
    sign_in(page, sample.viewer_key, "/models")
    expect(page.get_by_role("row", name=re.compile(f"^{sample.models[1]} "))).to_be_visible()
    expect(page.get_by_role("region", name="Lineage")).to_contain_text(TUNED)
    page.goto(f"/models/{sample.models[0]}")
    expect(page.get_by_role("region", name="Lineage")).to_contain_text(TUNED)
    expect(page.get_by_role("region", name="Use cases").get_by_role("row", name=re.compile("Support bot"))).to_be_visible()
    expect(page.get_by_role("main").get_by_role("button")).to_have_count(0)
    expect(page.get_by_role("form")).to_have_count(0)


def test_the_lineage_graph_and_deploy(page: Any, console: Console, tuned: str) -> None:
    """The model page draws its family: the base model and what a job trained from it, with the job and the
    data; its nodes are links the keyboard follows. Deploy asks for a model to be online in a use case."""
    sample = console.sample
    base = sample.models[0]
    sign_in(page, console.server.api_key, f"/models/{TUNED}")
    graph = page.get_by_role("region", name="Lineage").get_by_role("group", name=f"Lineage graph of {base}")
    expect(graph.get_by_role("link", name=f"{TUNED} (this model)")).to_be_visible()
    expect(graph.get_by_role("link", name=f"Training job {tuned[:8]} of {TUNED}")).to_be_visible()
    expect(graph).to_contain_text("tuner · dataset faq")
    expect(graph).to_contain_text("base model")
    graph.get_by_role("link", name=base, exact=True).focus()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(f"/models/{re.escape(base)}$"))
    graph = page.get_by_role("group", name=f"Lineage graph of {base}")
    expect(graph.get_by_role("link", name=f"{base} (this model)")).to_be_visible()
    graph.get_by_role("link", name=f"Training job {tuned[:8]} of {TUNED}").click()
    expect(page).to_have_url(re.compile(f"/jobs/{tuned}$"))

    # Deploy: attach the second model to the empty use case, then ask for it online there.
    other = sample.models[1]
    page.goto(f"/models/{other}")
    use_cases = page.get_by_role("region", name="Use cases")
    attach = use_cases.get_by_role("form", name="Attach to a use case")
    attach.get_by_label("Use case to attach to").select_option(sample.empty_use_case)
    attach.get_by_role("button", name="Attach").click()
    drafts = use_cases.get_by_role("row", name=re.compile("Drafts"))
    expect(drafts.get_by_role("cell").nth(2)).to_have_text("no")
    drafts.get_by_role("button", name="Deploy in Drafts").click()
    expect(drafts.get_by_role("cell").nth(2)).to_have_text("deployed")
    expect(drafts.get_by_role("button", name="Deploy in Drafts")).to_have_count(0)
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        services = {s.key: s for s in sdk.use_cases.get(sample.empty_use_case).model_services}
        assert services[other].desired_online
    drafts.get_by_role("button", name="Detach from Drafts").click()
    expect(use_cases.get_by_role("row", name=re.compile("Drafts"))).to_have_count(0)
