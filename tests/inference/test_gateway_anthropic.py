"""Anthropic as a provider: the official ``openai`` client against a live server whose model is served by a fake
Anthropic Messages API on 127.0.0.1; requests, tool calls and streams translated both ways."""

from __future__ import annotations

import json
import uuid

import httpx
import openai
import pytest

from adaptive_engine.server.db import models as orm
from tests.ab_tests.support import in_db
from tests.inference.fixtures import API_KEY
from tests.inference.gateway_world import Gateway

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


def claude(gw: Gateway, upstream, external_id: str = "claude-test", **config) -> str:
    key = gw.k(f"claude{uuid.uuid4().hex[:6]}")
    gw.admin.models.add_external(
        name=key,
        key=key,
        external_model_id=external_id,
        api_key=API_KEY,
        provider="anthropic",
        endpoint=upstream.base_url,
    )
    gw.attach(key, gw.k("uc1"))
    if config:
        gw.admin.models.update_gateway_config(key, **config)
    return key


def tool_calls_of(gw: Gateway, completion_id: str) -> list | None:
    async def work(session):
        return (await session.get(orm.Completion, uuid.UUID(completion_id))).tool_calls

    return in_db(gw.server, work)


def test_chat_is_translated_both_ways(gw: Gateway, fresh_upstream):
    key = claude(gw, fresh_upstream)
    assert gw.admin.models.get(key).provider_name == "ANTHROPIC"
    answer = gw.openai().chat.completions.create(
        model=key,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        max_completion_tokens=50,
        stop="x",
        user="u-1",
        temperature=0.5,
        extra_body={"top_k": 5},
    )
    sent = fresh_upstream.requests[-1]
    assert sent.path == "/v1/messages" and sent.headers["x-api-key"] == API_KEY and sent.headers["anthropic-version"]
    assert sent.body == {
        "model": "claude-test",
        "system": "Be brief.",
        "max_tokens": 50,
        "stop_sequences": ["x"],
        "metadata": {"user_id": "u-1"},
        "temperature": 0.5,
        "top_k": 5,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }
    assert answer.choices[0].message.content == "echo: hi" and answer.choices[0].finish_reason == "stop"
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (7, 4)
    # Anthropic needs max_tokens: the documented default when neither the caller nor the model's defaults give one.
    gw.openai().chat.completions.create(model=key, messages=[{"role": "user", "content": "hi"}])
    assert fresh_upstream.requests[-1].body["max_tokens"] == 4096
    chunks = list(
        gw.openai().chat.completions.create(
            model=key,
            messages=[{"role": "user", "content": "one two"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: one two"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (7, 4)


def test_tool_calls(gw: Gateway, fresh_upstream):
    key = claude(gw, fresh_upstream)
    question = [{"role": "user", "content": "weather?"}]
    answer = gw.openai().chat.completions.create(
        model=key,
        messages=question,
        tools=[WEATHER, CLOCK],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        parallel_tool_calls=False,
    )
    sent = fresh_upstream.requests[-1].body
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "The weather in a city",
            "input_schema": WEATHER["function"]["parameters"],
        },
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert sent["tool_choice"] == {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == (
        "toolu_0",
        "get_weather",
        {"text": "weather?"},
    )
    assert tool_calls_of(gw, choice.model_extra["completion_id"]) == [call.model_dump()]
    conversation = question + [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": "toolu_0", "content": "sunny"},
    ]
    answer = gw.openai().chat.completions.create(model=key, messages=conversation, tools=[WEATHER])
    assert fresh_upstream.requests[-1].body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_0", "name": "get_weather", "input": {"text": "weather?"}}],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_0", "content": "sunny"}]},
    ]
    assert answer.choices[0].message.content == "tool toolu_0 said: sunny"


def test_streamed_tool_calls(gw: Gateway, fresh_upstream):
    key = claude(gw, fresh_upstream)
    chunks = list(
        gw.openai().chat.completions.create(
            model=key, messages=[{"role": "user", "content": "go"}], tools=[WEATHER, CLOCK], stream=True
        )
    )
    calls: dict[int, dict] = {}
    for piece in (tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])):
        call = calls.setdefault(piece.index, {"id": None, "name": "", "arguments": ""})
        call["id"] = piece.id or call["id"]
        call["name"] += piece.function.name or ""
        call["arguments"] += piece.function.arguments or ""
    assert [(c["id"], c["name"], json.loads(c["arguments"])) for c in calls.values()] == [
        ("toolu_0", "get_weather", {"text": "go"}),
        ("toolu_1", "get_time", {"text": "go"}),
    ]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    stored = tool_calls_of(gw, chunks[0].choices[0].model_extra["completion_id"])
    assert [t["function"]["name"] for t in stored] == ["get_weather", "get_time"]


def test_images_become_image_blocks(gw: Gateway, fresh_upstream):
    key = claude(gw, fresh_upstream)
    content = [
        {"type": "text", "text": "what? "},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    answer = gw.openai().chat.completions.create(model=key, messages=[{"role": "user", "content": content}])
    assert fresh_upstream.requests[-1].body["messages"][0]["content"] == [
        {"type": "text", "text": "what? "},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"}},
    ]
    assert answer.choices[0].message.content == "echo: what? [image]"


@pytest.mark.parametrize(
    ("path", "change", "needle"),
    [
        ("/chat/completions", {"n": 2}, "Anthropic models do not support 'n'"),
        (
            "/chat/completions",
            {"logprobs": True, "response_format": {"type": "json_object"}},
            "Anthropic models do not support 'logprobs', 'response_format'",
        ),
        (
            "/chat/completions",
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "input_audio", "input_audio": {"data": "AA", "format": "wav"}}],
                    }
                ]
            },
            "take no 'input_audio' content part",
        ),
        ("/completions", {"prompt": "hi"}, "Anthropic models serve chat only"),
    ],
)
def test_what_anthropic_cannot_do_is_refused_by_name(gw: Gateway, fresh_upstream, path, change, needle):
    key = claude(gw, fresh_upstream)
    fresh_upstream.requests.clear()
    r = httpx.post(
        gw.api_url + path,
        headers={"Authorization": f"Bearer {gw.server.api_key}"},
        json={"model": key, "messages": [{"role": "user", "content": "hi"}], **change},
    )
    assert r.status_code == 400 and needle in r.json()["error"]["message"], r.text
    assert fresh_upstream.requests == []


def test_overloaded_is_retried_then_falls_back(gw: Gateway, fresh_upstream):
    key = claude(gw, fresh_upstream, "claude-overloaded")
    with pytest.raises(openai.APIStatusError) as caught:
        gw.openai().chat.completions.create(model=key, messages=[{"role": "user", "content": "hi"}])
    assert caught.value.status_code == 502 and caught.value.body["message"] == "Anthropic error (529): Overloaded"
    assert len(fresh_upstream.requests) == 3
    rescued = claude(gw, fresh_upstream, "claude-overloaded", fallbacks=[gw.k("solo")], max_retries=0)
    answer = gw.openai().chat.completions.create(model=rescued, messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "echo: hi" and answer.model.endswith("/" + gw.k("solo"))
