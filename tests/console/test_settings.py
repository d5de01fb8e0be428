"""The settings pages in the browser: API keys (a new key shown once, revoke), teams and members, roles,
integrations with "send test" and the delivery log (a real webhook receiver on 127.0.0.1); each page shows
only to users whose permissions reach it."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from adaptive_engine import Adaptive
from adaptive_engine.sdk.errors import AuthenticationError
from tests.console.conftest import Console, sign_in
from tests.integrations.receivers import HttpReceiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[HttpReceiver]:
    with HttpReceiver() as running:
        yield running


def test_api_keys_shown_once_and_revoked(page: Any, console: Console) -> None:
    sample = console.sample
    sign_in(page, sample.editor_key, "/settings")
    expect(page).to_have_url(re.compile("/settings/api-keys$"))
    # An editor manages integrations, not users, teams or roles.
    expect(page.get_by_role("navigation", name="Settings").get_by_role("link")).to_have_text(["API keys", "Integrations"])
    page.get_by_label("Key name").fill("ci runner")
    page.get_by_role("button", name="Create key").click()
    shown = page.get_by_role("region", name="New key")
    expect(shown).to_contain_text("It is shown this once")
    key = shown.get_by_label("The new key").inner_text()
    with Adaptive(console.server.base_url, api_key=key) as as_key:
        assert sample.use_case in {u.key for u in as_key.use_cases.list()}
    row = page.get_by_role("row", name=re.compile("ci runner"))
    expect(row).to_contain_text("active")
    expect(row).to_contain_text(key[:6])
    page.reload()
    expect(page.get_by_role("region", name="New key")).to_have_count(0)
    expect(page.get_by_text(key)).to_have_count(0)
    row.get_by_role("button", name="Revoke ci runner").click()
    row.get_by_role("button", name="Keep it").click()
    expect(row).to_contain_text("active")
    row.get_by_role("button", name="Revoke ci runner").click()
    row.get_by_role("button", name="Revoke for good").click()
    expect(row).to_contain_text("revoked")
    with Adaptive(console.server.base_url, api_key=key, max_retries=0) as as_key, pytest.raises(AuthenticationError):
        as_key.use_cases.list()


def test_teams_members_and_roles(page: Any, console: Console) -> None:
    sign_in(page, console.server.api_key, "/settings/teams")
    page.get_by_label("Team name").fill("Research")
    page.get_by_role("button", name="Create team").click()
    research = page.get_by_role("row", name=re.compile("^Research"))
    expect(research).to_contain_text("none")
    members = page.get_by_role("form", name="Set a member")
    members.get_by_label("User (email)").fill("viewer@example.com")
    members.get_by_label("Team").select_option("research")
    members.get_by_label("Role").select_option("editor")
    members.get_by_role("button", name="Set member").click()
    expect(research).to_contain_text("viewer@example.com editor")
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        viewer = next(u for u in sdk.users.list() if u.email == "viewer@example.com")
        assert {(t.team.key, t.role.key) for t in viewer.teams} == {("default", "viewer"), ("research", "editor")}
    research.get_by_role("button", name="Remove viewer@example.com from research").click()
    expect(research).to_contain_text("none")
    # A refused change says why.
    members.get_by_label("User (email)").fill("nobody@example.com")
    members.get_by_role("button", name="Set member").click()
    expect(page.get_by_role("alert")).to_contain_text("nobody@example.com")

    page.get_by_role("navigation", name="Settings").get_by_role("link", name="Roles").click()
    form = page.get_by_role("form", name="New role")
    form.get_by_label("Role name").fill("Annotator")
    form.get_by_label("use_case:read").check()
    form.get_by_label("feedback:write").check()
    form.get_by_role("button", name="Create role").click()
    expect(page.get_by_role("row", name=re.compile("^Annotator"))).to_contain_text("use_case:read")
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        role = next(r for r in sdk.roles.list() if r.key == "annotator")
        assert sorted(role.permissions) == ["feedback:write", "use_case:read"]


def test_integration_send_test_and_delivery_log(page: Any, console: Console, receiver: HttpReceiver) -> None:
    sign_in(page, console.server.api_key, "/settings/integrations")
    expect(page.get_by_text("No integrations for this team")).to_be_visible()
    page.get_by_role("button", name="New integration").click()
    form = page.get_by_role("form", name="New integration")
    form.get_by_label("Integration name").fill("ops hook")
    form.get_by_label("Webhook URL").fill(f"{receiver.url}/hooks/engine")
    form.get_by_role("button", name="Create integration").click()
    made = page.get_by_role("region", name="New integration")
    secret = made.get_by_label("Signing secret").inner_text()
    assert len(secret) >= 32
    made.get_by_role("link", name="ops hook").click()
    expect(page.get_by_text(f"POST {receiver.url}/hooks/engine")).to_be_visible()
    log = page.get_by_role("region", name="Delivery log")
    expect(log).to_contain_text("Nothing delivered yet")

    # A test returns at once with its event id; the log shows how the delivery went.
    test = page.get_by_role("form", name="Send a test")
    expect(test.get_by_label("Topic")).to_have_value("job.test")
    test.get_by_role("button", name="Send test").click()
    status = test.get_by_role("status")
    expect(status).to_contain_text("queued for 1 integration(s)")
    event = re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", status.inner_text()).group(0)
    delivered = log.locator("tr[aria-current=true]")
    expect(delivered).to_contain_text(event)
    expect(delivered).to_contain_text("delivered", timeout=20_000)
    receiver.wait_for(1)
    assert receiver.requests[0]["path"] == "/hooks/engine" and receiver.json(0)["id"] == event

    # A failing receiver: the first attempt's error, then the retry that delivers.
    receiver.fail_with = [503]
    test.get_by_role("button", name="Send test").click()
    expect(log.locator("tr[aria-current=true]")).to_contain_text("2 of 5", timeout=30_000)
    retried = log.locator("tr[aria-current=true]")
    expect(retried).to_contain_text("delivered")
    retried.get_by_text("each attempt").click()
    expect(retried).to_contain_text("HTTP 503 Service Unavailable, retry in")
    # A refusal that cannot get better fails at once, with its reason.
    receiver.fail_with = [400]
    test.get_by_role("button", name="Send test").click()
    failed = log.locator("tr[aria-current=true]")
    expect(failed).to_contain_text("failed", timeout=20_000)
    expect(failed).to_contain_text("HTTP 400 Bad Request")
    log.get_by_label("Status").select_option("FAILED")
    expect(log.locator("tbody tr")).to_have_count(1)

    page.get_by_role("button", name="Disable").click()
    expect(page.get_by_role("button", name="Enable")).to_be_visible()
    test.get_by_role("button", name="Send test").click()
    expect(test.get_by_role("status")).to_contain_text("no enabled integration")
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        hooks = sdk.integrations.list("default")
        assert [(h.name, h.enabled) for h in hooks] == [("ops hook", False)]
    page.get_by_role("button", name="Delete integration").click()
    page.get_by_role("group", name="Confirm delete").get_by_role("button", name="Delete for good").click()
    expect(page).to_have_url(re.compile("/settings/integrations$"))
    expect(page.get_by_text("No integrations for this team")).to_be_visible()


def test_viewer_gets_only_their_keys(page: Any, console: Console) -> None:
    sign_in(page, console.sample.viewer_key, "/use-cases")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Settings").click()
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    expect(page.get_by_role("navigation", name="Settings").get_by_role("link")).to_have_text(["API keys"])
    expect(page.get_by_role("form", name="Whose keys")).to_have_count(0)
    for path, permission in (("teams", "team:manage"), ("roles", "role:manage"), ("integrations", "integration:manage"),
                             ("users", "user:manage")):
        page.goto(f"/settings/{path}")
        expect(page.get_by_text(f"Only users with the {permission} permission see this page")).to_be_visible()
        expect(page.get_by_role("main").get_by_role("button")).to_have_count(0)
        expect(page.get_by_role("main").get_by_role("table")).to_have_count(0)


def test_edit_an_integration(page: Any, console: Console, receiver: HttpReceiver) -> None:
    """The edit form changes what was changed (name, topics, retries, where it delivers); the next test goes to
    the new place, signed with the secret it had; the server's refusals show as its messages."""
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        hook = sdk.integrations.create("default", {"name": "edit me", "provider": "webhook", "config": {
            "connection": {"webhook": {"url": f"{receiver.url}/old", "secret": "s" * 40}},
            "notification_settings": {"subscriptions": [{"topic_pattern": "job.*", "scope": "TEAM"}]}}})
        sdk.integrations.create("default", {"name": "taken", "provider": "webhook", "config": {
            "connection": {"webhook": {"url": f"{receiver.url}/other"}}}})
    sign_in(page, console.server.api_key, f"/settings/integrations/{hook.id}")
    expect(page.get_by_text(f"POST {receiver.url}/old")).to_be_visible()
    page.get_by_role("button", name="Edit integration").click()
    form = page.get_by_role("form", name="Edit integration")
    expect(form.get_by_label("Integration name")).to_have_value("edit me")
    expect(form.get_by_label("Webhook URL")).to_have_value(f"{receiver.url}/old")
    form.get_by_role("button", name="Save changes").click()
    expect(form.get_by_role("alert")).to_have_text("Nothing changed.")
    form.get_by_label("Integration name").fill("taken")
    form.get_by_role("button", name="Save changes").click()
    expect(form.get_by_role("alert")).to_contain_text("already has an integration named 'taken'")
    form.get_by_label("Integration name").fill("edited hook")
    form.get_by_label("Webhook URL").fill(f"{receiver.url}/new")
    form.get_by_label("Topics").fill("job.*, model.*")
    form.get_by_label("Retries").select_option("singleshot")
    form.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status").filter(has_text="Saved.")).to_be_visible()
    expect(page.get_by_role("form", name="Edit integration")).to_have_count(0)
    expect(page.get_by_text(f"POST {receiver.url}/new")).to_be_visible()
    expect(page.locator("dl.facts")).to_contain_text("job.*, model.*")
    expect(page.locator("dl.facts")).to_contain_text("no (one attempt)")
    with Adaptive(console.server.base_url, api_key=console.server.api_key) as sdk:
        stored = next(h for h in sdk.integrations.list("default") if h.id == hook.id)
        assert stored.name == "edited hook" and stored.config.delivery_policy == "singleshot"
        assert [s.topic_pattern for s in stored.config.notification_settings.subscriptions] == ["job.*", "model.*"]
    # The next test goes to the new URL, still signed with the secret the webhook had.
    before = len(receiver.requests)
    test = page.get_by_role("form", name="Send a test")
    test.get_by_label("Topic").fill("model.test")
    test.get_by_role("button", name="Send test").click()
    expect(page.get_by_role("region", name="Delivery log").locator("tr[aria-current=true]")).to_contain_text(
        "delivered", timeout=20_000)
    receiver.wait_for(before + 1)
    arrived = receiver.requests[-1]
    assert arrived["path"] == "/new"
    timestamp = arrived["headers"]["x-adaptive-timestamp"].encode()
    signed = hmac.new(b"s" * 40, timestamp + b"." + arrived["body"], hashlib.sha256).hexdigest()
    assert arrived["headers"]["x-adaptive-signature"] == f"sha256={signed}"
