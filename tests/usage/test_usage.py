"""Prices and cost, usage roll-ups and their GraphQL/SDK reads, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from adaptive_engine.sdk.errors import NotFoundError, PermissionDeniedError, ValidationError
from tests.usage.world import World, build, price_of, sql


@pytest.fixture(scope="module")
def world(server, upstream) -> Iterator[World]:
    w = build(server.base_url, server.api_key, upstream)
    yield w
    w.admin.close()


def test_prices_are_set_on_add_and_update_and_local_models_cost_nothing(world: World) -> None:
    priced = world.admin.models.get(world.k("priced"))
    assert (priced.prices.input, priced.prices.output, priced.prices.cached_input) == (1000.0, 2000.0, 500.0)
    assert world.admin.models.get(world.k("free")).prices.output == 0.0
    updated = world.admin.models.update_prices(world.k("free"), cached_input=0.5)
    assert (updated.prices.input, updated.prices.output, updated.prices.cached_input) == (0.0, 0.0, 0.5)
    updated = world.admin.models.update_prices(world.k("free"), input=0.0, cached_input=0.0)
    assert updated.prices.cached_input == 0.0
    with pytest.raises(ValidationError, match="input"):
        world.admin.models.update_prices(world.k("free"), input=-1)
    assert world.admin.models.get(world.k("free")).prices.input == 0.0  # refused: nothing changed
    with pytest.raises(NotFoundError):
        world.admin.models.update_prices(f"nope-{world.s}", input=1)
    # Only registry managers (model:register) set prices.
    with pytest.raises(PermissionDeniedError):
        world.sdk("vera").models.update_prices(world.k("free"), input=1)


def test_usage_totals_equal_the_sum_of_the_stored_completions(world: World, server) -> None:
    for who, model, times in (("alice", "priced", 3), ("bob", "priced", 2), ("alice", "free", 2)):
        for _ in range(times):
            world.chat(who, f"{world.k('uc')}/{world.k(model)}")
    with pytest.raises(openai.APIStatusError):  # fails upstream (every retry too): counted as an error
        world.chat("bob", f"{world.k('uc')}/fail500x9-{world.s}")
    server.settle()

    report = world.admin.usage.report(group_by=["MODEL", "API_KEY"], use_cases=[_use_case_id(world)])
    got = {(r.model, r.api_key_id): r for r in report}
    stored = sql(
        server.settings.resolved_database_url,
        "SELECT c.model_key, k.name, count(*), sum(c.prompt_tokens), sum(c.completion_tokens), sum(c.cost) "
        "FROM completions c JOIN use_cases u ON u.id = c.use_case_id JOIN api_keys k ON k.id = c.api_key_id "
        "WHERE u.key = :k GROUP BY c.model_key, k.name",
        k=world.k("uc"),
    )
    assert len(stored) == 3
    for model, who, count, prompt, completion, cost in stored:
        row = got[(model, world.key_ids[who])]
        assert (row.requests, row.prompt_tokens, row.completion_tokens) == (count, prompt, completion)
        assert row.cost == pytest.approx(cost)
        assert row.latency_p50_ms is not None and row.latency_p50_ms <= row.latency_p95_ms
        assert row.errors == 0
    alice = got[(world.k("priced"), world.key_ids["alice"])]
    # The fake upstream reports one cached prompt token per call.
    assert alice.cost == pytest.approx(price_of(alice.prompt_tokens, alice.completion_tokens, alice.requests))
    assert got[(world.k("free"), world.key_ids["alice"])].cost == 0
    errors = got[(f"fail500x9-{world.s}", world.key_ids["bob"])]
    assert (errors.errors, errors.requests) == (1, 0)

    # The official client's shapes read the same roll-ups.
    per_bucket = world.admin.usage.model_usage(world.k("priced"), unit="HOUR")
    assert sum(b.interactions for b in per_bucket) >= 5  # other tests of the module may add more
    assert all(b.total_tokens == b.prompt_tokens + b.completion_tokens for b in per_bucket)
    by_use_case = {u.use_case.key: u for u in world.admin.usage.model_usage_by_use_case(world.k("priced"))}
    assert by_use_case[world.k("uc")].interactions == 5
    assert by_use_case[world.k("uc")].model_service.key == world.k("priced")
    overall = world.admin.usage.global_usage(interval="DAY")
    models = {m.model_key: m for m in overall.by_model}
    assert models[world.k("priced")].interactions >= 5
    assert models[world.k("priced")].model.key == world.k("priced")
    assert sum(p.interactions for p in models[world.k("priced")].timeseries) == models[world.k("priced")].interactions
    assert overall.total.interactions == overall.adaptive_models.interactions + overall.external_models.interactions

    # A key's holder reads their own usage; another user's use case stays invisible to a stranger.
    mine = world.sdk("bob").usage.report(mine=True, group_by=["MODEL"])
    assert {r.model: r.requests for r in mine}[world.k("priced")] == 2
    # Buckets are UTC: another time zone is refused by name, not ignored.
    r = httpx.post(
        world.base_url + "/api/graphql",
        headers={"Authorization": f"Bearer {world.keys['alice']}"},
        json={"query": '{ globalUsage(filter: {interval: DAY, timezone: "Europe/Paris"}) { total { interactions } } }'},
    )
    assert r.json()["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    assert "time zone" in r.json()["errors"][0]["message"]


def _use_case_id(world: World) -> str:
    return next(u.id for u in world.admin.use_cases.list() if u.key == world.k("uc"))


def test_cost_is_per_call_and_a_local_model_at_zero(world: World, server) -> None:
    answer = world.chat("alice")
    server.settle()
    rows = sql(
        server.settings.resolved_database_url,
        "SELECT cost, prompt_tokens, completion_tokens FROM completions WHERE id = :id",
        id=_stored_id(server, answer.choices[0].message.id),
    )
    cost, prompt, completion = rows[0]
    assert (prompt, completion) == (answer.usage.prompt_tokens, answer.usage.completion_tokens)
    cached = answer.usage.prompt_tokens_details.cached_tokens
    assert cost == pytest.approx(price_of(prompt, completion, cached)) and cost > 0


def _stored_id(server, completion_id: str):
    import uuid

    value = uuid.UUID(completion_id)
    return value.hex if server.settings.database_url is None else value


def test_usage_report_refuses_bad_input(world: World) -> None:
    with pytest.raises(ValidationError, match="from is after to"):
        world.admin.usage.report(since=2_000_000_000, until=1_000_000_000)
    with pytest.raises(ValueError, match="both"):
        world.admin.usage.report(since=1_000_000_000)
