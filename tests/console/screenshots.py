"""Regenerates the console's screenshots (docs/screenshots/*.png), shown in the README:

    make screenshots        # or: python -m tests.console.screenshots docs/screenshots

A fresh server with the sample data of the console tests (and a finished training job, a trained model,
datasets, a grader and a webhook integration), every page in the light theme and a few in the dark one, in
Debian's headless Chromium.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.console.world import TRAINER, TUNER, Sample, launch, make_sample, require_console_build
from tests.integrations.receivers import HttpReceiver
from tests.support import LiveServer, make_settings

VIEWPORT = {"width": 1280, "height": 800}
# The A/B test is evaluated every second and warms up at 10 values per model, so its history fills quickly.
SETTINGS = {"ab_test_evaluation_interval_s": 1.0, "ab_test_min_observations": 10}
DARK = ("use-case-overview", "interactions", "job-detail", "models", "model-detail")
WORDS = '''def grade(messages, completion, metadata):
    words = len(completion.split())
    return {"score": min(words, 30) / 30, "reasoning": f"{words} words: short answers read best"}
'''


def wait_for_job(admin: Any, job_id: str) -> None:
    deadline = time.monotonic() + 300
    while (job := admin.jobs.get(job_id)).status not in ("COMPLETED", "FAILED", "CANCELED"):
        if time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id} is still {job.status}")
        time.sleep(0.3)
    if job.status != "COMPLETED":
        raise RuntimeError(f"job {job_id} ended {job.status}: {job.error}")


def rate_ab_test(admin: Any, sample: Sample, rounds: int = 6) -> None:
    """Rated answers of both models of the A/B test, in rounds a little longer apart than the evaluator's
    interval (1 s on these servers), so its history has a point per round."""
    rng = random.Random(5)
    for round_ in range(rounds):
        for model, mean in zip(sample.models, (0.55, 0.75)):
            for i in range(4):
                admin.interactions.create(
                    messages=[{"role": "user", "content": f"Question {round_}.{i}"}], completion="An answer.",
                    model=model, use_case=sample.use_case, ab_campaign="small-vs-large",
                    feedbacks=[{"feedback_key": sample.feedback_key, "value": round(min(1, max(0, rng.gauss(mean, 0.15))), 2)}])
        time.sleep(1.5)


def make_more(server: LiveServer, sample: Sample, folder: Path, receiver: HttpReceiver) -> dict[str, str]:
    """What the pages beyond use cases show; answers the ids the paths need."""
    from adaptive_engine import Adaptive

    uc = sample.use_case
    with Adaptive(server.base_url, api_key=server.api_key) as admin:
        admin.ab_tests.create("small-vs-large", sample.feedback_key, list(sample.models), traffic_split=0.5, use_case=uc)
        rate_ab_test(admin, sample)
        for key, source in (("trainer", TRAINER), ("tuner", TUNER)):
            (folder / f"{key}.py").write_text(source)
            admin.recipes.upload(str(folder / f"{key}.py"), recipe_key=key, use_case=uc)
        trained = admin.jobs.run("trainer", num_gpus=0, use_case=uc, name="toy-training",
                                 args={"steps": 12, "tags": ["support"], "weights": {"billing": 2.0}})
        wait_for_job(admin, trained.id)
        tuned = admin.jobs.run("tuner", num_gpus=0, use_case=uc, name="tune-support",
                               args={"dataset": "faq", "base_model": sample.models[0], "output_model_key": "support-tuned"})
        wait_for_job(admin, tuned.id)
        rows = folder / "faq.jsonl"
        rows.write_text("\n".join(json.dumps({
            "messages": [{"role": "system", "content": "You are a helpful support agent."},
                         {"role": "user", "content": f"How do I {task}?"}],
            "completion": answer, "labels": {"topic": topic}})
            for topic, task, answer in [
                ("billing", "get an invoice", "Open Orders, pick the order and choose Download invoice."),
                ("billing", "change my card", "Go to Billing, then Payment methods, and add the new card."),
                ("shipping", "track a parcel", "The tracking link is in your confirmation email."),
                ("account", "reset my password", "Use Forgot password on the sign-in page."),
                ("account", "close my account", "Write to support from the address of the account."),
            ]))
        admin.datasets.upload(str(rows), "faq", name="Support FAQ", use_case=uc)
        admin.graders.create.custom(key="brevity", feedback_key="brevity", description="Short answers read best",
                                    code=WORDS, use_case=uc)
        hook = admin.integrations.create("default", {"name": "ops hook", "provider": "webhook", "config": {
            "connection": {"webhook": {"url": f"{receiver.url}/hooks/engine", "method": "POST"}},
            "notification_settings": {"subscriptions": [{"topic_pattern": "job.*", "scope": "TEAM"}]}}})
        admin.integrations.test_notification({"topic": "job.completed", "scope": {"team": "default"}, "payload": {}})
        receiver.wait_for(1)
    return {"job": trained.id, "integration": hook.id}


def try_grader(page: Any) -> None:
    form = page.get_by_role("form", name="Try the grader")
    form.get_by_label("User message").fill("Where is my parcel?")
    form.get_by_label("Completion to grade").fill("Your parcel left our warehouse yesterday; the tracking link is in your email.")
    form.get_by_role("button", name="Grade").click()
    page.get_by_role("status", name="Result").get_by_text("words").wait_for()


def console_pages(sample: Sample, ids: dict[str, str]) -> list[tuple[str, str, str, Callable[[Any], None] | None]]:
    """Every page of the console on the sample data: (name, path, its heading, what to do there first)."""
    uc = sample.use_case
    return [
        ("use-cases", "/use-cases", "Use cases", None),
        ("use-case-overview", f"/use-cases/{uc}", "Support bot", None),
        ("interactions", f"/use-cases/{uc}/interactions?label=topic%3Dbilling", "Interactions", None),
        ("interaction-detail", f"/use-cases/{uc}/interactions/{sample.completion_ids[1]}", "Interaction", None),
        ("ab-tests", f"/use-cases/{uc}/ab-tests", "A/B tests", None),
        ("ab-test-detail", f"/use-cases/{uc}/ab-tests/small-vs-large", "small-vs-large", None),
        ("jobs", "/jobs", "Jobs", None),
        ("job-detail", f"/jobs/{ids['job']}", "toy-training", None),
        ("run-recipe", f"/jobs/new?useCase={uc}&recipe=trainer", "Run a recipe", None),
        ("models", "/models", "Models", None),
        ("model-detail", "/models/support-tuned", "Support tuned", None),
        ("datasets", f"/use-cases/{uc}/datasets", "Datasets", None),
        ("dataset-detail", f"/use-cases/{uc}/datasets/faq", "Support FAQ", None),
        ("graders", f"/use-cases/{uc}/graders", "Graders", None),
        ("grader-detail", f"/use-cases/{uc}/graders/brevity", "brevity", try_grader),
        ("api-keys", "/settings/api-keys", "API keys", None),
        ("roles", "/settings/roles", "Roles", None),
        ("integration-detail", f"/settings/integrations/{ids['integration']}", "ops hook", None),
        ("users", "/settings/users", "Users", None),
    ]


def main(out: Path) -> None:
    from playwright.sync_api import sync_playwright

    require_console_build()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as data, LiveServer(make_settings(Path(data), **SETTINGS)) as server, \
            HttpReceiver() as receiver:
        sample = make_sample(server.base_url, server.api_key)
        ids = make_more(server, sample, Path(data), receiver)
        pages = console_pages(sample, ids)
        with sync_playwright() as playwright:
            browser = launch(playwright)
            for scheme in ("light", "dark"):
                context = browser.new_context(base_url=server.base_url, viewport=VIEWPORT, color_scheme=scheme)
                page = context.new_page()
                page.goto("/sign-in")
                page.get_by_role("heading", name="Sign in to Adaptive Engine").wait_for()
                if scheme == "light":
                    page.screenshot(path=out / "sign-in.png")
                page.get_by_label("API key").fill(server.api_key)
                page.get_by_role("button", name="Sign in").click()
                page.get_by_role("button", name="Sign out").wait_for()
                for name, path, heading, act in pages:
                    if scheme == "dark" and name not in DARK:
                        continue
                    page.goto(path)
                    page.get_by_role("heading", name=heading, exact=True).wait_for()
                    page.wait_for_load_state("networkidle")
                    if act is not None:
                        act(page)
                    suffix = "-dark" if scheme == "dark" else ""
                    page.screenshot(path=out / f"{name}{suffix}.png", full_page=True)
                context.close()
            browser.close()
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots"))
