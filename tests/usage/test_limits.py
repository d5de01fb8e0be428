"""Limits on API keys, users and use cases, and API-key scope, on the data plane: counted in-process and in
Redis (127.0.0.1:6379, a key prefix of this test's own), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import openai
import pytest
import redis

from adaptive_engine.sdk.errors import (
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
    RateLimitError,
    ValidationError,
)
from tests.inference.fixtures import API_KEY
from tests.support import LiveServer, make_settings
from tests.usage.world import World, build

REDIS_URL = "redis://127.0.0.1:6379/0"


def forget(prefix: str) -> None:
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)
    client.close()


@pytest.fixture(scope="module")
def redis_server(database, tmp_path_factory) -> Iterator[LiveServer]:  # noqa: ANN001
    """A second server whose counters live in Redis (on PostgreSQL it shares the session's database with
    ``server``; on SQLite it has its own file)."""
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    settings = make_settings(tmp_path_factory.mktemp("redis-data"), database, redis_url=REDIS_URL, redis_prefix=prefix)
    with LiveServer(settings) as live:
        yield live
    forget(prefix)


@pytest.fixture(scope="module", params=["in-process", "redis"])
def world(request, server, upstream) -> Iterator[World]:  # noqa: ANN001
    live = server if request.param == "in-process" else request.getfixturevalue("redis_server")
    w = build(live.base_url, live.api_key, upstream)
    w.live = live  # type: ignore[attr-defined]
    yield w
    w.admin.close()


def test_a_key_limited_to_5_requests_a_minute_gets_its_6th_refused_with_retry_after(world: World) -> None:
    world.mint("alice.rpm")
    world.admin.usage.set_limits("API_KEY", world.key_ids["alice.rpm"], requests_per_minute=5)
    for _ in range(5):
        world.chat("alice.rpm")
    with pytest.raises(openai.RateLimitError) as refused:
        world.chat("alice.rpm")
    response = refused.value.response
    assert response.status_code == 429
    assert 1 <= int(response.headers["retry-after"]) <= 60
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("rate_limit_error", "RATE_LIMITED")
    assert error["details"]["limit"] == "requests_per_minute" and error["details"]["scope"] == "API_KEY"
    assert "requests_per_minute" in error["message"]
    # Our SDK raises its rate-limit error carrying the limit and the wait.
    with pytest.raises(RateLimitError) as sdk_refused:
        world.sdk("alice.rpm").chat.create(messages=[{"role": "user", "content": "hi"}], use_case=world.k("uc"))
    assert sdk_refused.value.limit == "requests_per_minute" and sdk_refused.value.scope == "API_KEY"
    assert 1 <= sdk_refused.value.retry_after <= 60
    assert RateLimitedError is RateLimitError
    # Another key of the same user is not limited; the refused requests were not served nor logged.
    world.chat("alice")
    world.admin.usage.remove_limits("API_KEY", world.key_ids["alice.rpm"])
    world.chat("alice.rpm")


def test_limits_on_a_user_and_on_a_use_case(world: World) -> None:
    world.mint("bob.user")
    world.admin.usage.set_limits("USER", f"bob-{world.s}@example.com", requests_per_minute=2)
    try:
        world.chat("bob.user")
        world.chat("bob")  # the same user's other key counts towards the same limit
        with pytest.raises(openai.RateLimitError) as refused:
            world.chat("bob.user")
        assert refused.value.response.json()["error"]["details"]["scope"] == "USER"
    finally:
        world.admin.usage.remove_limits("USER", f"bob-{world.s}@example.com")
    world.admin.usage.set_limits("USE_CASE", world.k("other"), requests_per_minute=1)
    world.chat("alice", world.k("other"))
    with pytest.raises(openai.RateLimitError) as refused:
        world.chat("bob", world.k("other"))
    assert refused.value.response.json()["error"]["details"]["scope"] == "USE_CASE"
    world.chat("bob", world.k("uc"))  # another use case is not limited


def test_concurrent_requests_and_tokens_per_minute(world: World) -> None:
    early_in_a_minute()
    world.mint("alice.tpm")
    # The fake upstream answers with 8 tokens: the first call leaves 2 of the minute's 10, the second may
    # start (the limit is checked before a call, its tokens counted after) and spends them, the third waits.
    world.admin.usage.set_limits("API_KEY", world.key_ids["alice.tpm"], tokens_per_minute=10)
    world.chat("alice.tpm")
    world.chat("alice.tpm")
    with pytest.raises(openai.RateLimitError) as refused:
        world.chat("alice.tpm")
    assert refused.value.response.json()["error"]["details"]["limit"] == "tokens_per_minute"
    assert int(refused.value.response.headers["retry-after"]) <= 60
    # One request in flight at most: a slow call holds the slot until it ends, then frees it.
    world.mint("alice.one")
    world.admin.usage.set_limits("API_KEY", world.key_ids["alice.one"], max_concurrent=1)

    def slow_calls() -> int:
        return sum(
            1 for r in list(world.upstream.requests) if isinstance(r.body, dict) and r.body.get("model") == "slow"
        )

    before = slow_calls()
    answers: list[Any] = []
    slow = threading.Thread(
        target=lambda: answers.append(world.chat("alice.one", f"{world.k('uc')}/{world.k('slow')}"))
    )
    # The slow call answers when this test releases it (or after slow_seconds, which other tests change on
    # the shared upstream): it is in flight for as long as the refusal below takes, however loaded the machine.
    world.upstream.slow_release.clear()
    slow_seconds, world.upstream.slow_seconds = world.upstream.slow_seconds, 60.0
    slow.start()
    try:
        deadline = time.monotonic() + 30
        while slow_calls() == before:  # the slow call holds the slot once the upstream has it
            assert slow.is_alive() and time.monotonic() < deadline, "the slow call failed or never reached the upstream"
            time.sleep(0.02)
        with pytest.raises(openai.RateLimitError) as refused:
            world.chat("alice.one")
        assert refused.value.response.json()["error"]["details"]["limit"] == "max_concurrent"
    finally:
        world.upstream.slow_release.set()
        slow.join(timeout=30)
        world.upstream.slow_release.clear()
        world.upstream.slow_seconds = slow_seconds
    assert len(answers) == 1, "the slow call failed"
    world.chat("alice.one")  # freed when the slow call ended


def early_in_a_minute(ahead: float = 15.0) -> None:
    """Tokens per minute count in fixed minutes: start a test of them with most of a minute ahead."""
    if time.time() % 60 > 60 - ahead:
        time.sleep(60 - time.time() % 60 + 0.1)


def test_a_budget_of_a_cent_stops_a_key_once_the_roll_ups_cross_it(world: World) -> None:
    world.mint("bob.budget")
    world.admin.usage.set_limits("API_KEY", world.key_ids["bob.budget"], budget_daily=0.01)
    world.chat("bob.budget")  # $0.0105: the roll-ups cross the budget
    world.live.settle()  # type: ignore[attr-defined]
    spent = world.sdk("bob.budget").usage.my_limits()
    assert spent[0].limit.budget_daily == 0.01 and spent[0].spent_today == pytest.approx(0.0105)
    with pytest.raises(openai.RateLimitError) as refused:
        world.chat("bob.budget")
    error = refused.value.response.json()["error"]
    assert error["details"]["limit"] == "budget_daily"
    assert int(refused.value.response.headers["retry-after"]) <= 86400
    # The month's spend counts the same roll-ups.
    world.admin.usage.set_limits("API_KEY", world.key_ids["bob.budget"], budget_monthly=0.01)
    with pytest.raises(openai.RateLimitError) as refused:
        world.chat("bob.budget")
    assert refused.value.response.json()["error"]["details"]["limit"] == "budget_monthly"


def test_unstored_calls_count_against_budgets(world: World) -> None:
    """Not stored as a completion, a store=False call reaches the roll-ups (every replica reads spend there)."""
    uc = world.k("uc")
    world.mint("bob.unstored")
    world.admin.usage.set_limits("API_KEY", world.key_ids["bob.unstored"], budget_daily=0.01)
    unstored = world.openai("bob.unstored")
    unstored.chat.completions.create(model=uc, messages=[{"role": "user", "content": "hi"}], store=False)  # $0.0105
    world.live.settle()  # type: ignore[attr-defined]
    (spent,) = world.sdk("bob.unstored").usage.my_limits()
    assert spent.spent_today == pytest.approx(0.0105)
    with pytest.raises(openai.RateLimitError) as refused:
        unstored.chat.completions.create(model=uc, messages=[{"role": "user", "content": "hi"}], store=False)
    assert refused.value.response.json()["error"]["details"]["limit"] == "budget_daily"


def test_embeddings_count_against_budgets(world: World) -> None:
    """Embeddings are not stored as interactions either: they reach the roll-ups at the model's input price."""
    uc = world.k("uc")
    # An embedding model at $1000 per million input tokens: the fake upstream counts 2 tokens an input.
    embedder = world.k("embedder")
    world.admin.models.add_external(
        name=embedder,
        key=embedder,
        external_model_id="emb-x",
        api_key=API_KEY,
        provider="open_ai",
        endpoint=world.upstream.base_url,
        embedding=True,
        prices={"input": 1000.0},
    )
    world.admin.models.attach(embedder, use_case=uc)
    world.mint("alice.embeds")
    world.admin.usage.set_limits("API_KEY", world.key_ids["alice.embeds"], budget_daily=0.01)
    embeds = world.openai("alice.embeds")
    embeds.embeddings.create(model=f"{uc}/{embedder}", input=["a", "b", "c", "d", "e"])  # 10 tokens: $0.01
    world.live.settle()  # type: ignore[attr-defined]
    (spent,) = world.sdk("alice.embeds").usage.my_limits()
    assert spent.spent_today == pytest.approx(0.01)
    report = world.admin.usage.report(group_by=["MODEL"], api_keys=[world.key_ids["alice.embeds"]])
    assert [(r.model, r.requests, r.prompt_tokens) for r in report] == [(embedder, 1, 10)]
    assert report[0].cost == pytest.approx(0.01)
    with pytest.raises(openai.RateLimitError) as refused:
        embeds.embeddings.create(model=f"{uc}/{embedder}", input=["f"])
    assert refused.value.response.json()["error"]["details"]["limit"] == "budget_daily"


def test_api_key_scope_expiry_models_and_use_cases(world: World) -> None:
    # 5 s for the key to serve a call first, however loaded the machine; then the test waits until it has
    # expired (the API shows the second, the server compares the instant), not for a length.
    soon = datetime.now(UTC) + timedelta(seconds=5)
    world.mint("alice.expiring", expires_at=soon)
    world.chat("alice.expiring")
    keys = {k.id: k for k in world.admin.api_keys.list(user=f"alice-{world.s}@example.com")}
    assert keys[world.key_ids["alice.expiring"]].expires_at == int(soon.timestamp())
    while datetime.now(UTC) <= soon:
        time.sleep(0.05)
    with pytest.raises(openai.AuthenticationError, match="expired"):
        world.chat("alice.expiring")
    with pytest.raises(AuthenticationError, match="expired"):  # everywhere, not only on the data plane
        world.sdk("alice.expiring").usage.my_limits()

    world.mint("alice.free-only", allowed_models=[world.k("free")])
    world.chat("alice.free-only", f"{world.k('uc')}/{world.k('free')}")
    with pytest.raises(openai.PermissionDeniedError, match=world.k("priced")):
        world.chat("alice.free-only", f"{world.k('uc')}/{world.k('priced')}")

    world.mint("alice.uc-only", use_cases=[world.k("uc")])
    world.chat("alice.uc-only")
    with pytest.raises(openai.PermissionDeniedError, match="use case"):
        world.chat("alice.uc-only", world.k("other"))

    with pytest.raises(ValidationError, match="future"):
        world.mint("alice.past", expires_at=int(time.time()) - 10)
    with pytest.raises(ValidationError, match="allowedModels"):
        world.mint("alice.nomodel", allowed_models=[f"nope-{world.s}"])
    with pytest.raises(ValidationError, match="useCases"):
        world.mint("alice.nouc", use_cases=[f"nope-{world.s}"])


def test_limits_are_set_by_user_managers_and_checked(world: World) -> None:
    with pytest.raises(PermissionDeniedError):
        world.sdk("alice").usage.set_limits("USER", f"alice-{world.s}@example.com", requests_per_minute=1000)
    with pytest.raises(PermissionDeniedError):
        world.sdk("alice").usage.list_limits()
    with pytest.raises(ValidationError, match="requests_per_minute"):
        world.admin.usage.set_limits("USER", f"alice-{world.s}@example.com", requests_per_minute=0)
    with pytest.raises(ValidationError, match="at least one"):
        world.admin.usage.set_limits("USER", f"alice-{world.s}@example.com")
    with pytest.raises(ValidationError):
        world.admin.usage.set_limits("NOBODY", "x", requests_per_minute=1)
    from adaptive_engine.sdk.errors import NotFoundError

    with pytest.raises(NotFoundError):
        world.admin.usage.set_limits("USER", f"nobody-{world.s}@example.com", requests_per_minute=1)
    limit = world.admin.usage.set_limits(
        "USER", f"alice-{world.s}@example.com", requests_per_minute=1000, budget_monthly=50
    )
    assert (limit.requests_per_minute, limit.budget_monthly, limit.tokens_per_minute) == (1000, 50.0, None)
    assert any(row.subject_id == limit.subject_id for row in world.admin.usage.list_limits("USER"))
    mine = world.sdk("alice").usage.my_limits()
    assert [m.limit.scope for m in mine] == ["USER"]
    assert world.admin.usage.remove_limits("USER", f"alice-{world.s}@example.com") is True
    assert world.admin.usage.remove_limits("USER", f"alice-{world.s}@example.com") is False
    with pytest.raises(AuthenticationError):
        world.admin.__class__(world.base_url, api_key="nope", max_retries=0).usage.my_limits()
