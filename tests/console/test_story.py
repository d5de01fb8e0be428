"""The story the product exists for, told in the browser: traffic arrives on a use case and shows without a
reload; a person annotates it; an sft job trains on the well-rated answers from a form and its loss falls on a
live chart; an A/B test of the trained model against its base decides as its interval narrows; the trained
model ends up the use case's default.

Set-up (the use case, its base model and feedback key) and the outside world (the application sending traffic,
its users rating answers during the A/B test) go through the SDK; every step of the person is in the browser.
Small on purpose (a few interactions, 6 optimizer steps of the bundled 135M model with LoRA; the A/B test
warms up at 10 values per model and is evaluated every second), so the whole story runs in about 2 minutes.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from adaptive_engine import Adaptive
from tests.console.conftest import Errors, sign_in
from tests.console.world import require_console_build
from tests.support import LiveServer, make_settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
# The converted bundled model: the same cache as the training tests (converted once, then reused).
MODEL_CACHE = REPO / "build" / "test-cache" / "models"
USE_CASE, BASE, TUNED, KEY, AB_TEST = "story-desk", "story-base", "story-sft", "helpful", "base-vs-tuned"
TRAFFIC = [
    ("Where is my parcel?", "Your parcel left our warehouse yesterday; the tracking link is in your email.", 1),
    ("How do I reset my password?", "Use Forgot password on the sign-in page and follow the email.", 1),
    ("Can I change my delivery address?", "Yes: open the order and choose Change address before it ships.", 1),
    ("Do you ship abroad?", "no", 0),
    ("Why was I charged twice?", "dunno", 0),
]


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    require_console_build()
    from adaptive_engine.models_bundled import bundled_chat_model_dir

    settings = make_settings(tmp_path_factory.mktemp("story"), builtin_recipes=True, ab_test_min_observations=10,
                             ab_test_evaluation_interval_s=1.0)
    with LiveServer(settings) as server, Adaptive(server.base_url, api_key=server.api_key) as sdk:
        sdk.use_cases.create(key=USE_CASE, name="Story desk", description="Answers parcel questions")
        sdk.models.add_local(str(bundled_chat_model_dir(MODEL_CACHE)), name="Story base", key=BASE)
        sdk.models.attach(BASE, use_case=USE_CASE, make_default=True)
        sdk.feedback.register_key(KEY, kind="scalar", name="Helpful")
        sdk.feedback.link(KEY, use_case=USE_CASE)
        deadline = time.monotonic() + 120
        while "sft" not in {r.key for r in sdk.recipes.list(use_case=USE_CASE)}:
            assert time.monotonic() < deadline, "the built-in recipes were not registered"
            time.sleep(0.5)
        yield server


@pytest.fixture
def browser_page(chromium: Any, story: LiveServer, errors: Errors) -> Iterator[Any]:
    context = chromium.new_context(base_url=story.base_url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    page.on("console", lambda message: errors.seen.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.seen.append(f"uncaught: {error}"))
    yield page
    context.close()
    assert errors.seen == [], f"errors in the page's console: {errors.seen}"


def rate_campaign_traffic(server: LiveServer, stop: threading.Event) -> None:
    """The users of the A/B test: rounds of rated answers of each model (the tuned one rated well), a second
    apart, until the test decides (or 120 rounds)."""
    with Adaptive(server.base_url, api_key=server.api_key) as sdk:
        for i in range(120):
            if stop.is_set():
                return
            for model, good in ((BASE, i % 3 == 0), (TUNED, i % 5 != 0)):
                sdk.interactions.create(messages=[{"role": "user", "content": f"Question {i}"}], completion="An answer.",
                                        model=model, use_case=USE_CASE, ab_campaign=AB_TEST,
                                        feedbacks=[{"feedback_key": KEY, "value": 1.0 if good else 0.0}])
            time.sleep(0.35)


def test_the_loop_from_the_browser(browser_page: Any, story: LiveServer) -> None:
    page = browser_page
    sdk = Adaptive(story.base_url, api_key=story.api_key)
    base = f"/use-cases/{USE_CASE}"

    # 1. Traffic arrives while the interactions list is open: it shows without a reload.
    sign_in(page, story.api_key, f"{base}/interactions")
    expect(page.get_by_text("No interactions yet")).to_be_visible()
    for prompt, answer, _ in TRAFFIC:
        sdk.interactions.create(messages=[{"role": "user", "content": prompt}], completion=answer, model=BASE,
                                use_case=USE_CASE)
    expect(page.get_by_text(f"{len(TRAFFIC)} in all")).to_be_visible(timeout=15_000)
    expect(page.locator("table.interactions tr.fresh")).to_have_count(len(TRAFFIC))

    # 2. A person reads each answer and rates it.
    for prompt, _, value in TRAFFIC:
        page.get_by_role("row", name=re.compile(re.escape(prompt))).get_by_role("link").click()
        expect(page.get_by_role("region", name="Conversation")).to_contain_text(prompt)
        form = page.get_by_role("form", name="Add feedback")
        form.get_by_label("Feedback key").fill(KEY)
        form.get_by_label("Value").fill(str(value))
        form.get_by_role("button", name="Add feedback").click()
        expect(page.get_by_role("region", name="Feedback", exact=True).get_by_role("row", name=re.compile(KEY))).to_be_visible()
        page.go_back()
    expect(page.locator("table.interactions .badge", has_text=f"{KEY}: 1")).to_have_count(3)

    # 3. An sft job from the well-rated answers, from the recipe's form; its loss falls on a live chart.
    page.goto(f"/jobs/new?useCase={USE_CASE}&recipe=sft")
    form = page.get_by_role("form", name="Recipe arguments")
    form.get_by_label("output_model_key").fill(TUNED)
    form.get_by_label("base_model").fill(BASE)
    form.get_by_label("Give feedback_filter").check()
    form.get_by_label("feedback_key").fill(KEY)
    form.get_by_label("min_value").fill("1")
    for name, value in (("max_steps", "6"), ("batch_size", "2"), ("lora_rank", "4"), ("lora_alpha", "8"),
                        ("max_length", "64"), ("learning_rate", "0.005")):
        form.get_by_label(name, exact=True).fill(value)
    form.get_by_label("Job name").fill("learn-from-ratings")
    form.get_by_role("button", name="Run").click()
    expect(page.get_by_role("heading", name="learn-from-ratings")).to_be_visible()
    loss = page.get_by_role("region", name="Metrics").get_by_role("heading", name=re.compile("^loss"))
    # Safety nets, not speed checks: six CPU training steps took over 4 minutes on two loaded cores.
    expect(loss).to_contain_text("from", timeout=600_000)  # two points or more drawn while it runs
    expect(page.get_by_role("img", name="loss per step").locator("canvas")).to_be_visible()
    expect(page.locator(".page-head").get_by_text("completed")).to_be_visible(timeout=600_000)
    expect(page.get_by_role("log", name="Job log")).to_contain_text("sft: 3 rows")
    last, first = (float(x) for x in re.search(r"last ([\d.]+) from ([\d.]+)", loss.inner_text()).groups())
    assert last < first, f"the loss did not fall: {first} -> {last}"

    # 4. The trained model, attached to the use case by its job, with where it came from; then an A/B test of
    # it against its base, from the browser.
    page.goto(f"/models/{TUNED}")
    expect(page.get_by_role("region", name="Use cases").get_by_role("row", name=re.compile("Story desk"))).to_be_visible()
    expect(page.get_by_role("region", name="Lineage")).to_contain_text(BASE)
    page.goto(f"{base}/ab-tests")
    page.get_by_role("button", name="New A/B test").click()
    form = page.get_by_role("form", name="New A/B test")
    form.get_by_label("A/B test key").fill(AB_TEST)
    form.get_by_label("Feedback key").select_option(KEY)
    expect(form.get_by_label(BASE)).to_be_checked()
    expect(form.get_by_label(TUNED)).to_be_checked()
    form.get_by_label("Share of traffic").fill("1")
    form.get_by_label("Make the winner the default").check()
    form.get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(f"{base}/ab-tests/{AB_TEST}$"))

    # 5. Its users rate answers; the page follows the test as its interval narrows, until it decides.
    stop = threading.Event()
    raters = threading.Thread(target=rate_campaign_traffic, args=(story, stop), daemon=True)
    raters.start()
    try:
        over_time = page.get_by_role("region", name="Over time")
        expect(over_time.get_by_role("img", name=f"Always-valid interval of {TUNED} − {BASE} over time")
               .locator("canvas")).to_be_visible(timeout=60_000)
        expect(page.get_by_role("progressbar", name="Way to a decision")).to_be_visible()
        expect(page.locator("dl.facts")).to_contain_text(f"winner · winner {TUNED}", timeout=90_000)
    finally:
        stop.set()
        raters.join(timeout=30)
    assert sdk.ab_tests.get(AB_TEST).status == "DONE"

    # 6. The trained model is now the use case's default, and the overview shows the traffic of the story.
    page.goto(base)
    models = page.get_by_role("region", name="Models")
    expect(models.get_by_role("row", name=re.compile(TUNED))).to_contain_text("default")
    expect(models.get_by_role("button", name=f"Make {BASE} the default model")).to_be_visible()  # no longer it
    traffic = page.get_by_role("region", name="Traffic")
    expect(traffic.get_by_role("img", name="Requests per model over time").locator("canvas")).to_be_visible()
    sdk.close()
