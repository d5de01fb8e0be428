"""Resilient upstreams, through the official ``openai`` client against a live server and the fake upstream:
retries on 429/5xx before anything is answered (honouring Retry-After), per-model timeouts, fallbacks (the
served model recorded), streams that fail midway end with an error event; and the model's gateway config
(updateModelGatewayConfig through our SDK)."""

from __future__ import annotations

import uuid

import openai
import pytest

from adaptive_engine.sdk.errors import NotFoundError, ValidationError
from adaptive_engine.server.db import models as orm
from tests.ab_tests.support import in_db
from tests.inference.gateway_world import Gateway

HI = [{"role": "user", "content": "hi"}]


def model(gw: Gateway, upstream, external_id: str, **config) -> str:
    """A new external model on uc1 calling ``external_id`` upstream, with its gateway config."""
    key = gw.k(f"m{uuid.uuid4().hex[:6]}")
    gw.external(key, external_model_id=external_id, endpoint=upstream.base_url)
    gw.attach(key, gw.k("uc1"))
    if config:
        gw.admin.models.update_gateway_config(key, **config)
    return key


def stored_model(gw: Gateway, completion_id: str) -> str:
    async def work(session):
        return (await session.get(orm.Completion, uuid.UUID(completion_id))).model_key

    return in_db(gw.server, work)


def test_429_then_200_is_retried(gw: Gateway, upstream):
    flaky = f"fail429x2-{gw.s}"
    key = model(gw, upstream, flaky)
    answer = gw.openai().chat.completions.create(model=key, messages=HI)
    assert answer.choices[0].message.content == "echo: hi"
    assert upstream.seen[flaky] == 3  # two refusals (each waited Retry-After), then the answer
    chunks = list(
        gw.openai().chat.completions.create(model=model(gw, upstream, f"fail503x2-{gw.s}"), messages=HI, stream=True)
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: hi"
    assert upstream.seen[f"fail503x2-{gw.s}"] == 3


def test_retries_stop(gw: Gateway, upstream):
    many = f"fail500x9-{gw.s}"
    with pytest.raises(openai.APIStatusError) as caught:
        gw.openai().chat.completions.create(model=model(gw, upstream, many), messages=HI)
    assert caught.value.status_code == 502 and caught.value.body["message"] == "OpenAI error (500): try again later (3)"
    assert upstream.seen[many] == 3  # the server's default: two more attempts
    once = f"fail500x9-once-{gw.s}"
    with pytest.raises(openai.APIStatusError):
        gw.openai().chat.completions.create(model=model(gw, upstream, once, max_retries=0), messages=HI)
    assert upstream.seen[once] == 1
    # A provider asking for a long wait is not waited for.
    long = f"fail429x1-{gw.s}-wait-long"
    with pytest.raises(openai.APIStatusError):
        gw.openai().chat.completions.create(model=model(gw, upstream, long), messages=HI)
    assert upstream.seen[long] == 1


def test_500_on_the_primary_then_the_fallback_serves(gw: Gateway, upstream):
    primary = model(gw, upstream, f"fail500x99-{gw.s}", fallbacks=[gw.k("solo")])
    answer = gw.openai().chat.completions.create(model=primary, messages=HI)
    assert answer.choices[0].message.content == "echo: hi"
    assert answer.model == f"{gw.k('uc1')}/{gw.k('solo')}" and answer.choices[0].model_extra["model"] == gw.k("solo")
    assert stored_model(gw, answer.choices[0].model_extra["completion_id"]) == gw.k("solo")
    assert upstream.requests[-1].body["model"] == gw.k("solo")
    chunks = list(gw.openai().chat.completions.create(model=primary, messages=HI, stream=True))
    assert chunks[0].model == f"{gw.k('uc1')}/{gw.k('solo')}"
    assert stored_model(gw, chunks[0].choices[0].model_extra["completion_id"]) == gw.k("solo")
    # A refusal of the request itself (4xx) is not something another model fixes.
    refused = model(gw, upstream, "google-style", fallbacks=[gw.k("solo")])
    with pytest.raises(openai.APIStatusError) as caught:
        gw.openai().chat.completions.create(model=refused, messages=HI)
    assert caught.value.status_code == 502 and "API key not valid" in caught.value.body["message"]


def test_slow_upstream_times_out(gw: Gateway, upstream):
    upstream.slow_seconds = 3.0
    slow = model(gw, upstream, "slow", first_byte_timeout_s=0.3, max_retries=0)
    for stream in (False, True):
        with pytest.raises(openai.APIStatusError) as caught:
            gw.openai().chat.completions.create(model=slow, messages=HI, stream=stream)
        assert caught.value.status_code == 504 and caught.value.body["code"] == "UPSTREAM_TIMEOUT"
        assert caught.value.body["message"] == "OpenAI error: no answer within 0.3 s"
    total = model(gw, upstream, "slow", total_timeout_s=0.4)
    with pytest.raises(openai.APIStatusError) as caught:
        gw.openai().chat.completions.create(model=total, messages=HI)
    assert caught.value.body["message"] == "OpenAI error: no complete answer within 0.4 s"
    rescued = model(gw, upstream, "slow", first_byte_timeout_s=0.3, fallbacks=[gw.k("solo")])
    assert gw.openai().chat.completions.create(model=rescued, messages=HI).choices[0].message.content == "echo: hi"


def test_a_stream_that_fails_midway_ends_with_an_error_event(gw: Gateway, upstream):
    upstream.slow_seconds = 3.0
    for external, config, needle in (
        ("die-midstream", {}, "did not answer as an OpenAI-compatible API"),
        ("stall-midstream", {"first_byte_timeout_s": 0.3}, "no answer within 0.3 s"),
    ):
        key = model(gw, upstream, external, **config)
        texts = []
        with pytest.raises(openai.APIError) as caught:
            for chunk in gw.openai().chat.completions.create(model=key, messages=HI, stream=True):
                texts.append(chunk.choices[0].delta.content)
        assert texts == ["half", " an"] and needle in caught.value.message


def test_defaults_are_sent_when_the_caller_gives_none(gw: Gateway, fresh_upstream):
    key = model(gw, fresh_upstream, "gpt-d", defaults={"temperature": 0.1, "max_completion_tokens": 5})
    gw.openai().chat.completions.create(model=key, messages=HI)
    assert fresh_upstream.requests[-1].body == {
        "model": "gpt-d",
        "messages": HI,
        "temperature": 0.1,
        "max_completion_tokens": 5,
    }
    gw.openai().chat.completions.create(model=key, messages=HI, temperature=0.9)
    assert fresh_upstream.requests[-1].body["temperature"] == 0.9


def test_gateway_config_is_read_back_and_cleared(gw: Gateway, upstream):
    key = model(
        gw,
        upstream,
        "gpt-c",
        connect_timeout_s=2,
        first_byte_timeout_s=30,
        total_timeout_s=120,
        max_retries=4,
        fallbacks=[gw.k("solo"), gw.k("def")],
        defaults={"seed": 1},
    )
    config = gw.admin.models.get(key).gateway_config
    assert (config.connect_timeout_s, config.first_byte_timeout_s, config.total_timeout_s, config.max_retries) == (
        2.0,
        30.0,
        120.0,
        4,
    )
    assert (config.fallbacks, config.defaults) == ([gw.k("solo"), gw.k("def")], {"seed": 1})
    config = gw.admin.models.update_gateway_config(key, total_timeout_s=0, fallbacks=[], defaults={}).gateway_config
    assert (config.total_timeout_s, config.first_byte_timeout_s, config.fallbacks, config.defaults) == (
        None,
        30.0,
        [],
        {},
    )


@pytest.mark.parametrize(
    ("change", "error", "needle"),
    [
        ({"connect_timeout_s": -1}, ValidationError, "connect_timeout_s must be between 0 and 3600"),
        ({"max_retries": 11}, ValidationError, "max_retries must be between 0 and 10"),
        ({"fallbacks": ["no-such-model"]}, NotFoundError, "model 'no-such-model' not found"),
        ({"fallbacks": ["{self}"]}, ValidationError, "cannot be its own fallback"),
        ({"fallbacks": ["{solo}", "{solo}"]}, ValidationError, "is listed twice"),
        ({"fallbacks": ["{emb}"]}, ValidationError, "fallbacks are for chat models"),
        ({"defaults": {"messages": []}}, ValidationError, "defaults cannot set messages"),
        ({"fallbacks": ["a", "b", "c", "d", "e", "f"]}, ValidationError, "at most 5 fallbacks"),
    ],
)
def test_bad_gateway_config_is_refused_and_changes_nothing(gw: Gateway, upstream, change, error, needle):
    key = model(gw, upstream, "gpt-b", max_retries=1)
    emb = gw.k("emb-b")
    if "{emb}" in str(change):
        gw.admin.models.add_external(
            name=emb,
            key=emb,
            external_model_id="e",
            api_key="k",
            provider="open_ai",
            endpoint=upstream.base_url,
            embedding=True,
        )
    names = {"self": key, "solo": gw.k("solo"), "emb": emb}
    change = {k: ([f.format(**names) for f in v] if k == "fallbacks" else v) for k, v in change.items()}
    with pytest.raises(error) as caught:
        gw.admin.models.update_gateway_config(key, **change)
    assert needle in str(caught.value)
    assert gw.admin.models.get(key).gateway_config.max_retries == 1


def test_upstream_settings_are_for_external_models(gw: Gateway):
    key = gw.k("local-row")

    async def add(session):
        session.add(orm.Model(key=key, name=key, kind="chat", provider="local", source={"path": "/nowhere"}))

    in_db(gw.server, add)
    with pytest.raises(ValidationError, match="max_retries applies to external models only"):
        gw.admin.models.update_gateway_config(key, max_retries=1)
    # A local model may fall back to an external one.
    assert gw.admin.models.update_gateway_config(key, fallbacks=[gw.k("solo")]).gateway_config.fallbacks == [
        gw.k("solo")
    ]


def test_a_model_that_keeps_failing_cools_down(gw: Gateway, upstream):
    from adaptive_engine.server.domains.inference.service import COOL_DOWN_FAILURES

    down = f"fail500x999-{gw.s}"
    primary = model(gw, upstream, down, max_retries=0, fallbacks=[gw.k("solo")])
    for _ in range(COOL_DOWN_FAILURES + 3):
        answer = gw.openai().chat.completions.create(model=primary, messages=HI)
        assert answer.model.endswith("/" + gw.k("solo"))
    # After COOL_DOWN_FAILURES failures in a row the primary is skipped: the fallback answers at once.
    assert upstream.seen[down] == COOL_DOWN_FAILURES


def test_a_change_made_by_another_replica_applies_here(gw: Gateway, upstream):
    """Another process (here: a direct write to the database, which this server's caches do not see at once)
    gives the model a fallback: this server applies it once its registry cache expires."""
    import time

    down = f"fail500x999-replica-{gw.s}"
    primary = model(gw, upstream, down, max_retries=0)
    with pytest.raises(openai.APIStatusError):
        gw.openai().chat.completions.create(model=primary, messages=HI)

    async def change(session):
        from sqlalchemy import select

        row = (await session.execute(select(orm.Model).where(orm.Model.key == primary))).scalar_one()
        row.source = {**row.source, "gateway": {**row.source["gateway"], "fallbacks": [gw.k("solo")]}}

    in_db(gw.server, change)
    for _ in range(100):  # bounded: the registry cache lives ADAPTIVE_REGISTRY_CACHE_SECONDS
        try:
            answer = gw.openai().chat.completions.create(model=primary, messages=HI)
        except openai.APIStatusError:
            time.sleep(0.1)
            continue
        assert answer.model.endswith("/" + gw.k("solo"))
        return
    raise AssertionError("the change was never applied")
