"""The console in Debian's headless Chromium against a real server, on data made through the SDK: each page
loads it, its main action works, a viewer sees no admin page and no control that changes anything, and no
page logs an error."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from adaptive_engine import Adaptive
from tests.console.conftest import Console, Errors, sign_in


def admin_sdk(console: Console) -> Adaptive:
    return Adaptive(console.server.base_url, api_key=console.server.api_key)


def test_sign_in_keeps_the_key_out_of_reach_and_sign_out_ends_the_session(page: Any, console: Console,
                                                                          errors: Errors) -> None:
    page.goto("/use-cases/support-bot")
    expect(page).to_have_url(re.compile(r"/sign-in\?next=%2Fuse-cases%2Fsupport-bot$"))
    page.get_by_label("API key").fill("ae_wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("This API key is not valid.")
    errors.expect("status of 401")  # the browser reports the refused sign-in request itself
    page.get_by_label("API key").fill(console.server.api_key)
    page.get_by_role("button", name="Sign in").click()
    # Back where the visit started, signed in.
    expect(page.get_by_role("heading", name="Support bot")).to_be_visible()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["ae_session"]["httpOnly"] and cookies["ae_session"]["sameSite"] == "Strict"
    assert "ae_session" not in page.evaluate("document.cookie")
    assert console.server.api_key not in page.evaluate("JSON.stringify(localStorage) + JSON.stringify(sessionStorage)")
    # A reload keeps the session (the CSRF token is asked for again).
    page.reload()
    expect(page.get_by_role("heading", name="Support bot")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to Adaptive Engine")).to_be_visible()
    assert page.request.get("/api/v1/auth/session").status == 401
    page.goto("/use-cases")
    expect(page).to_have_url(re.compile(r"/sign-in"))


def test_use_cases_list_and_create(page: Any, console: Console) -> None:
    sign_in(page, console.server.api_key)
    expect(page.get_by_role("heading", name="Use cases")).to_be_visible()
    row = page.get_by_role("row", name=re.compile("Support bot"))
    expect(row).to_contain_text("gpt-small")
    expect(page.get_by_role("link", name="Drafts")).to_be_visible()
    page.get_by_label("Find").fill("draft")
    expect(page.get_by_role("link", name="Support bot")).to_have_count(0)
    page.get_by_role("button", name="New use case").click()
    page.get_by_label("Name").fill("Returns desk")
    page.get_by_label("Key").fill("returns-desk")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("heading", name="Returns desk")).to_be_visible()
    expect(page).to_have_url(re.compile("/use-cases/returns-desk$"))
    with admin_sdk(console) as sdk:
        assert "returns-desk" in {u.key for u in sdk.use_cases.list()}


def test_use_case_overview_and_make_default(page: Any, console: Console) -> None:
    sample = console.sample
    sign_in(page, console.server.api_key, f"/use-cases/{sample.use_case}")
    models = page.get_by_role("region", name="Models")
    expect(models.get_by_role("row", name=re.compile(sample.models[0]))).to_contain_text("default")
    feedback = page.get_by_role("region", name="Feedback per model")
    for model in sample.models:
        expect(feedback.get_by_role("row", name=re.compile(model))).to_contain_text(sample.feedback_key)
    expect(page.get_by_role("region", name="Running A/B tests")).to_contain_text("No A/B test running")
    # The feedback key's mean per model over time, drawn from MetricWithContext.timeseries.
    trends = page.get_by_role("region", name="Feedback over time")
    chart = trends.get_by_role("img", name=f"Mean of {sample.feedback_key} per model over time")
    expect(chart.locator("canvas")).to_be_visible()
    expect(trends.locator("figcaption")).to_have_text(re.compile(f"{sample.models[1]}.*{sample.models[0]}|{sample.models[0]}.*{sample.models[1]}"))
    trends.get_by_label("Time range").select_option("Last 24 hours")
    expect(chart.locator("canvas")).to_be_visible()
    page.get_by_role("button", name=f"Make {sample.models[1]} the default model").click()
    expect(models.get_by_role("row", name=re.compile(sample.models[1]))).to_contain_text("default")
    with admin_sdk(console) as sdk:
        services = {s.key: s.is_default for s in sdk.use_cases.get(sample.use_case).model_services}
        assert services[sample.models[1]] and not services[sample.models[0]]
        sdk.models.update(sample.models[0], is_default=True, use_case=sample.use_case)
    # An unknown use case is an error state, not a blank page.
    page.goto("/use-cases/no-such-thing")
    expect(page.get_by_role("alert")).to_contain_text("not found")


def test_interactions_filter_page_and_open(page: Any, console: Console) -> None:
    sample = console.sample
    sign_in(page, console.server.api_key, f"/use-cases/{sample.use_case}/interactions")
    expect(page.get_by_text("32 in all")).to_be_visible()
    rows = page.locator("table.interactions tbody tr")
    expect(rows).to_have_count(25)
    page.get_by_role("button", name="Next →").click()
    expect(rows).to_have_count(7)
    page.get_by_role("button", name="← Previous").click()
    expect(rows).to_have_count(25)
    # Filters run on the server: 32 interactions, every fifth prompt about an account (i % 5 == 4): 6 of them.
    page.get_by_label("Label").fill("topic=account")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("6 in all")).to_be_visible()
    page.get_by_label("Model").select_option(sample.models[0])
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("3 in all")).to_be_visible()
    expect(page).to_have_url(re.compile(r"label=topic%3Daccount"))
    page.get_by_label("Completion text").fill("nothing says this")
    page.get_by_role("button", name="Apply").click()
    expect(page.get_by_text("No interaction matches these filters")).to_be_visible()
    page.get_by_role("button", name="Clear").click()
    expect(page.get_by_text("32 in all")).to_be_visible()
    rows.first.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Interaction", exact=True)).to_be_visible()
    expect(page.get_by_role("region", name="Conversation")).to_contain_text("You are a helpful support agent.")
    # An empty use case says so.
    page.goto(f"/use-cases/{sample.empty_use_case}/interactions")
    expect(page.get_by_text("No interactions yet")).to_be_visible()


def test_interaction_detail_add_feedback(page: Any, console: Console) -> None:
    sample = console.sample
    completion_id = sample.completion_ids[0]  # logged without feedback
    sign_in(page, sample.editor_key, f"/use-cases/{sample.use_case}/interactions/{completion_id}")
    conversation = page.get_by_role("region", name="Conversation")
    expect(conversation).to_contain_text("Why was I charged twice this month?")
    expect(conversation).to_contain_text("pending authorization")
    expect(page.get_by_text("No feedback on this interaction")).to_be_visible()
    form = page.get_by_role("form", name="Add feedback")
    form.get_by_label("Feedback key").fill(sample.feedback_key)
    form.get_by_label("Value").fill("0.9")
    form.get_by_label("Reason").fill("clear and correct")
    form.get_by_role("button", name="Add feedback").click()
    feedback = page.get_by_role("region", name="Feedback", exact=True)
    expect(feedback.get_by_role("row", name=re.compile("clear and correct"))).to_contain_text("0.900")
    with admin_sdk(console) as sdk:
        stored = sdk.interactions.get(completion_id, use_case=sample.use_case)
        assert [(f.metric.key, f.value) for f in stored.direct_feedbacks] == [(sample.feedback_key, 0.9)]


def test_viewer_sees_no_admin_page_and_no_mutating_control(page: Any, console: Console) -> None:
    sample = console.sample
    sign_in(page, sample.viewer_key, "/use-cases")
    expect(page.get_by_role("link", name="Support bot")).to_be_visible()
    navigation = page.get_by_role("navigation", name="Main")
    expect(navigation.get_by_role("link")).to_have_text(["Use cases", "Jobs", "Models", "Settings"])
    expect(page.get_by_role("button", name="New use case")).to_have_count(0)
    page.goto("/settings/users")
    expect(page.get_by_text("Only users with the user:manage permission see this page")).to_be_visible()
    expect(page.get_by_role("table")).to_have_count(0)
    page.goto(f"/use-cases/{sample.use_case}")
    expect(page.get_by_role("region", name="Models").get_by_role("row")).to_have_count(3)
    expect(page.get_by_role("button", name=re.compile("Make .* default"))).to_have_count(0)
    page.goto(f"/use-cases/{sample.use_case}/interactions/{sample.completion_ids[1]}")
    expect(page.get_by_role("region", name="Conversation")).to_be_visible()
    expect(page.get_by_role("form", name="Add feedback")).to_have_count(0)
    # The only buttons a viewer gets: theme, sign out.
    expect(page.get_by_role("main").get_by_role("button")).to_have_count(0)


def test_users_page_for_admins(page: Any, console: Console) -> None:
    sign_in(page, console.server.api_key)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Users").click()
    expect(page.get_by_role("row", name=re.compile("viewer@example.com"))).to_contain_text("default: viewer")


def test_keyboard_and_themes(page: Any, console: Console) -> None:
    sign_in(page, console.server.api_key)
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("navigation", name="Main").get_by_role("link", name="Use cases")).to_be_focused()
    html = page.locator("html")
    toggle = page.get_by_role("button", name=re.compile("^Theme: system"))
    toggle.focus()
    page.keyboard.press("Enter")
    expect(html).to_have_attribute("data-theme", "light")
    page.keyboard.press("Enter")
    expect(html).to_have_attribute("data-theme", "dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    page.reload()
    expect(html).to_have_attribute("data-theme", "dark")  # remembered
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == background != "rgb(247, 248, 250)"
    page.get_by_role("button", name=re.compile("^Theme: dark")).click()
    expect(html).not_to_have_attribute("data-theme", re.compile("."))


def test_first_page_javascript_fits_the_budget() -> None:
    """What the first page loads (its entry script and preloaded chunks) stays under 400 KB gzipped; every
    page is a chunk of its own."""
    import gzip

    from tests.console.world import require_console_build

    build = require_console_build()
    index = (build / "index.html").read_text()
    first = re.findall(r'(?:src|href)="/(assets/[^"]+\.js)"', index)
    assert first, "no script in index.html"
    size = sum(len(gzip.compress((build / path).read_bytes())) for path in first)
    assert size <= 400 * 1024, f"first page loads {size / 1024:.0f} KB of gzipped JavaScript"
    chunks = {p.name.split("-")[0] for p in (build / "assets").glob("*.js")}
    assert {"SignIn", "UseCases", "UseCaseOverview", "Interactions", "InteractionDetail", "TimeChart", "Jobs", "JobDetail",
            "RunRecipe", "Models", "ModelDetail", "Datasets", "DatasetDetail", "Graders", "GraderDetail", "ApiKeys",
            "Teams", "Roles", "Integrations", "IntegrationDetail"} <= chunks


def test_ab_tests_create_follow_and_cancel(page: Any, chromium: Any, console: Console) -> None:
    sample = console.sample
    base = f"/use-cases/{sample.use_case}"
    sign_in(page, console.server.api_key, f"{base}/ab-tests")
    expect(page.get_by_text("No A/B tests yet")).to_be_visible()
    page.get_by_role("button", name="New A/B test").click()
    form = page.get_by_role("form", name="New A/B test")
    form.get_by_label("A/B test key").fill("small-vs-large")
    form.get_by_label("Feedback key").select_option(sample.feedback_key)
    expect(form.get_by_label(sample.models[0])).to_be_checked()
    expect(form.get_by_label(sample.models[1])).to_be_checked()
    form.get_by_label("Share of traffic").fill("0.5")
    form.get_by_role("button", name="Start").click()
    expect(page).to_have_url(re.compile(f"{base}/ab-tests/small-vs-large$"))
    expect(page.get_by_text("50% of the traffic")).to_be_visible()
    arms = page.get_by_role("region", name="Models")
    for model in sample.models:
        expect(arms.get_by_role("row", name=re.compile(model))).to_be_visible()
    with admin_sdk(console) as sdk:
        assert sdk.ab_tests.get("small-vs-large").status in ("WARMUP", "IN_PROGRESS")
    # A viewer follows it but cannot cancel it.
    viewer = chromium.new_context(base_url=console.server.base_url).new_page()
    sign_in(viewer, sample.viewer_key, f"{base}/ab-tests/small-vs-large")
    expect(viewer.get_by_role("heading", name="small-vs-large")).to_be_visible()
    expect(viewer.get_by_role("button", name="Cancel A/B test")).to_have_count(0)
    viewer.goto(f"{base}/ab-tests")
    expect(viewer.get_by_role("link", name="small-vs-large")).to_be_visible()
    expect(viewer.get_by_role("button", name="New A/B test")).to_have_count(0)
    viewer.context.close()
    page.get_by_role("button", name="Cancel A/B test").click()
    expect(page.get_by_text("cancelled", exact=True)).to_be_visible()
    with admin_sdk(console) as sdk:
        assert sdk.ab_tests.get("small-vs-large").status == "CANCELLED"
    page.goto(f"{base}/ab-tests?status=IN_PROGRESS")
    expect(page.get_by_text("No A/B test with this status")).to_be_visible()
    page.get_by_label("Status").select_option("CANCELLED")
    expect(page.get_by_role("link", name="small-vs-large")).to_be_visible()
