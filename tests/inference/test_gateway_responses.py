"""POST /api/v1/responses through the official ``openai`` client (``client.responses``) against a live server:
text and function calls, plain and streamed, on external models (the fake upstream) and on the same
routing, checks and logging as chat."""

from __future__ import annotations

import json
import uuid

import httpx
import openai
import pytest

from adaptive_engine.server.db import models as orm
from tests.ab_tests.support import in_db
from tests.inference.gateway_world import Gateway

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
CLOCK = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}


def stored(gw: Gateway, completion_id: str) -> orm.Completion:
    async def work(session):
        return await session.get(orm.Completion, uuid.UUID(completion_id))

    return in_db(gw.server, work)


def test_text(gw: Gateway, fresh_upstream):
    response = gw.openai().responses.create(
        model=gw.k("solo"),
        input="hi",
        instructions="Be brief.",
        max_output_tokens=20,
        temperature=0.5,
        metadata={"app": "x"},
    )
    assert response.output_text == "echo: hi" and response.status == "completed"
    assert response.model == f"{gw.k('uc1')}/{gw.k('solo')}"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (5, 3)
    assert fresh_upstream.requests[-1].body == {
        "model": gw.k("solo"),
        "max_completion_tokens": 20,
        "temperature": 0.5,
        "metadata": {"app": "x"},
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
    }
    row = stored(gw, response.model_extra["completion_id"])
    assert row.completion == "echo: hi" and row.labels == {"app": "x"}


def test_function_calls_and_their_outputs(gw: Gateway, fresh_upstream):
    client = gw.openai()
    response = client.responses.create(
        model=gw.k("solo"),
        input=[{"role": "user", "content": "weather?"}],
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
    )
    sent = fresh_upstream.requests[-1].body
    assert sent["tools"] == [{"type": "function", "function": {k: v for k, v in WEATHER.items() if k != "type"}}]
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    [call] = [o for o in response.output if o.type == "function_call"]
    assert (call.call_id, call.name, json.loads(call.arguments)) == ("call_0", "get_weather", {"text": "weather?"})
    assert stored(gw, response.model_extra["completion_id"]).tool_calls[0]["function"]["name"] == "get_weather"
    followed = client.responses.create(
        model=gw.k("solo"),
        tools=[WEATHER],
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": "weather?"}]},
            {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ],
    )
    assert fresh_upstream.requests[-1].body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": call.arguments}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_0", "content": "sunny"},
    ]
    assert followed.output_text == "tool call_0 said: sunny"


def test_streams(gw: Gateway, fresh_upstream):
    client = gw.openai()
    events = list(client.responses.create(model=gw.k("solo"), input="one two three", stream=True))
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "echo: one two three"
    assert events[-1].response.output_text == "echo: one two three"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert stored(gw, events[-1].response.model_extra["completion_id"]).completion == "echo: one two three"
    calls = list(client.responses.create(model=gw.k("solo"), input="go", tools=[WEATHER, CLOCK], stream=True))
    arguments = "".join(e.delta for e in calls if e.type == "response.function_call_arguments.delta")
    done = [e.item for e in calls if e.type == "response.output_item.done"]
    assert [(i.call_id, i.name) for i in done] == [("call_0", "get_weather"), ("call_1", "get_time")]
    assert arguments == done[0].arguments + done[1].arguments
    assert [o.name for o in calls[-1].response.output if o.type == "function_call"] == ["get_weather", "get_time"]


def test_structured_output(gw: Gateway, fresh_upstream):
    schema = {"type": "object", "properties": {"echo": {"type": "string"}}, "required": ["echo"]}
    response = gw.openai().responses.create(
        model=gw.k("solo"), input="hi", text={"format": {"type": "json_schema", "name": "e", "schema": schema}}
    )
    assert fresh_upstream.requests[-1].body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "e", "schema": schema},
    }
    assert json.loads(response.output_text) == {"echo": "echo: hi"}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            {"previous_response_id": "resp_1"},
            "'previous_response_id' is not supported: this server keeps no response state",
        ),
        ({"include": ["x"]}, "'include' is not supported on /responses"),
        ({"tools": [{"type": "web_search"}]}, "tools[0]: only function tools are supported"),
        (
            {"tools": [{"type": "function", "name": "f", "parameters": {"type": "objekt"}}]},
            "is not a valid JSON schema",
        ),
        ({"input": []}, "input must be a string or a non-empty list"),
        ({"input": [{"type": "reasoning"}]}, "input item type 'reasoning' is not supported"),
        ({"text": {"format": {"type": "yaml"}}}, "text.format must be"),
    ],
)
def test_bad_input(gw: Gateway, fresh_upstream, change, needle):
    r = httpx.post(
        gw.api_url + "/responses",
        headers={"Authorization": f"Bearer {gw.server.api_key}"},
        json={"model": gw.k("solo"), "input": "hi", **change},
    )
    assert r.status_code == 400 and needle in r.json()["error"]["message"], r.text
    assert fresh_upstream.requests == []


def test_a_failing_stream_ends_with_an_error_event(gw: Gateway, upstream):
    key = gw.k("die")
    gw.external(key, external_model_id="die-midstream", endpoint=upstream.base_url)
    gw.attach(key, gw.k("uc1"))
    events = list(gw.openai().responses.create(model=key, input="hi", stream=True))
    assert [e.type for e in events][-1] == "error"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "half an"
    with pytest.raises(openai.NotFoundError):
        gw.openai().responses.create(model="no-such-thing", input="hi")
