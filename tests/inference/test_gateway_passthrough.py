"""Parameters, tools, structured output, logprobs and content parts on external models, through the official
``openai`` client against a live server and the fake upstream: sent as given, returned as they came, stored
with the completion; bad input refused with its reason before anything is sent."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from adaptive_engine.server.db import models as orm
from tests.ab_tests.support import in_db
from tests.enforcement import gql
from tests.inference.gateway_world import Gateway

HI = [{"role": "user", "content": "hi"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CLOCK = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}}


def row(gw: Gateway, completion_id: str) -> orm.Completion:
    async def work(session):
        return await session.get(orm.Completion, uuid.UUID(completion_id))

    found = in_db(gw.server, work)
    assert found is not None
    return found


def count(gw: Gateway) -> int:
    from sqlalchemy import func, select

    async def work(session):
        return (await session.execute(select(func.count(orm.Completion.id)))).scalar_one()

    return in_db(gw.server, work)


def test_only_what_the_caller_gave_is_sent(gw: Gateway, fresh_upstream):
    client = gw.openai()
    client.chat.completions.create(model=gw.k("solo"), messages=HI)
    assert fresh_upstream.requests[-1].body == {"model": gw.k("solo"), "messages": HI}
    answer = client.chat.completions.create(
        model=gw.k("solo"),
        messages=HI,
        max_completion_tokens=12,
        reasoning_effort="low",
        seed=7,
        user="u-1",
        metadata={"team": "blue"},
        service_tier="flex",
        temperature=0.3,
        stop="x",
        extra_body={"some_new_field": {"a": 1}, "labels": {"env": "test"}, "session_id": str(uuid.uuid4())},
    )
    assert fresh_upstream.requests[-1].body == {
        "model": gw.k("solo"),
        "messages": HI,
        "max_completion_tokens": 12,
        "reasoning_effort": "low",
        "seed": 7,
        "user": "u-1",
        "metadata": {"team": "blue"},
        "service_tier": "flex",
        "temperature": 0.3,
        "stop": "x",
        "some_new_field": {"a": 1},
    }
    stored = row(gw, answer.choices[0].model_extra["completion_id"])
    assert stored.labels == {"team": "blue", "env": "test"} and stored.user_ref == "u-1"
    # Streams ask the provider for usage, whatever the caller asked.
    list(client.chat.completions.create(model=gw.k("solo"), messages=HI, stream=True))
    assert fresh_upstream.requests[-1].body == {
        "model": gw.k("solo"),
        "messages": HI,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_provider_fields_come_back(gw: Gateway, fresh_upstream):
    answer = gw.openai().chat.completions.create(model=gw.k("solo"), messages=HI)
    assert answer.system_fingerprint == "fp_fake"
    assert answer.usage.prompt_tokens_details.cached_tokens == 1
    assert answer.choices[0].message.refusal is None and answer.choices[0].message.content == "echo: hi"


def test_tool_calls(gw: Gateway, fresh_upstream):
    messages = [{"role": "user", "content": "weather in Paris?"}]
    answer = gw.openai().chat.completions.create(
        model=gw.k("solo"), messages=messages, tools=[WEATHER, CLOCK], tool_choice="auto", parallel_tool_calls=False
    )
    sent = fresh_upstream.requests[-1].body
    assert (sent["tools"], sent["tool_choice"], sent["parallel_tool_calls"]) == ([WEATHER, CLOCK], "auto", False)
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    [call] = choice.message.tool_calls
    assert (call.id, call.type, call.function.name) == ("call_0", "function", "get_weather")
    assert json.loads(call.function.arguments) == {"text": "weather in Paris?"}
    stored = row(gw, choice.model_extra["completion_id"])
    assert stored.tool_calls == [call.model_dump()] and stored.completion == "" and stored.finish_reason == "tool_calls"

    # The tool's result goes back with the assistant's call: both reach the provider unchanged and are stored.
    conversation = messages + [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny, 21 C"},
    ]
    answer = gw.openai().chat.completions.create(model=gw.k("solo"), messages=conversation, tools=[WEATHER])
    assert fresh_upstream.requests[-1].body["messages"] == conversation
    assert answer.choices[0].message.content == "tool call_0 said: sunny, 21 C"
    stored = row(gw, answer.choices[0].model_extra["completion_id"])
    assert stored.messages[1] == {"role": "assistant", "content": "", "tool_calls": [call.model_dump()]}
    assert stored.messages[2] == {"role": "tool", "content": "sunny, 21 C", "tool_call_id": "call_0"}
    assert stored.tool_calls is None
    # Read back through GraphQL, as graders, datasets and the console read interactions.
    first = choice.model_extra["completion_id"]
    query = """query C($u: IdOrKey!, $a: UUID!, $b: UUID!) {
      a: completion(useCase: $u, id: $a) { toolCalls chatMessages { role toolCalls toolCallId } }
      b: completion(useCase: $u, id: $b) { toolCalls chatMessages { role content toolCalls toolCallId } } }"""
    data = gql(gw.admin, query, {"u": gw.k("uc1"), "a": first, "b": answer.choices[0].model_extra["completion_id"]})
    assert data["a"]["toolCalls"] == [call.model_dump()]
    assert data["b"]["toolCalls"] is None
    assert data["b"]["chatMessages"][1:] == [
        {"role": "assistant", "content": "", "toolCalls": [call.model_dump()], "toolCallId": None},
        {"role": "tool", "content": "sunny, 21 C", "toolCalls": None, "toolCallId": "call_0"},
    ]


def test_streamed_tool_call_deltas(gw: Gateway, fresh_upstream):
    messages = [{"role": "user", "content": "what time is it where it rains?"}]
    chunks = list(
        gw.openai().chat.completions.create(model=gw.k("solo"), messages=messages, tools=[WEATHER, CLOCK], stream=True)
    )
    pieces = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(pieces) > 4  # passed through piece by piece, not gathered
    calls: dict[int, dict] = {}
    for piece in pieces:
        call = calls.setdefault(piece.index, {"id": None, "name": "", "arguments": ""})
        call["id"] = piece.id or call["id"]
        call["name"] += (piece.function.name or "") if piece.function else ""
        call["arguments"] += (piece.function.arguments or "") if piece.function else ""
    assert [(c["id"], c["name"]) for c in calls.values()] == [("call_0", "get_weather"), ("call_1", "get_time")]
    assert all(json.loads(c["arguments"]) == {"text": messages[0]["content"]} for c in calls.values())
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    stored = row(gw, chunks[0].choices[0].model_extra["completion_id"])
    assert [(t["id"], t["function"]["name"], json.loads(t["function"]["arguments"])) for t in stored.tool_calls] == [
        (c["id"], c["name"], json.loads(c["arguments"])) for c in calls.values()
    ]


def test_structured_output_and_logprobs(gw: Gateway, fresh_upstream):
    schema = {
        "type": "object",
        "properties": {"echo": {"type": "string"}},
        "required": ["echo"],
        "additionalProperties": False,
    }
    response_format = {"type": "json_schema", "json_schema": {"name": "echo", "schema": schema, "strict": True}}
    answer = gw.openai().chat.completions.create(
        model=gw.k("solo"), messages=HI, response_format=response_format, logprobs=True, top_logprobs=2
    )
    sent = fresh_upstream.requests[-1].body
    assert (sent["response_format"], sent["logprobs"], sent["top_logprobs"]) == (response_format, True, 2)
    assert json.loads(answer.choices[0].message.content) == {"echo": "echo: hi"}
    assert [t.token for t in answer.choices[0].logprobs.content] == ['{"echo":', '"echo:', 'hi"}']
    chunks = list(
        gw.openai().chat.completions.create(
            model=gw.k("solo"), messages=HI, logprobs=True, stream=True, response_format={"type": "json_object"}
        )
    )
    assert [t.token for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content]
    assert json.loads("".join(c.choices[0].delta.content or "" for c in chunks if c.choices)) == {"echo": "echo: hi"}


def test_content_parts_pass_through(gw: Gateway, fresh_upstream):
    content = [
        {"type": "text", "text": "what is this? "},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}},
    ]
    answer = gw.openai().chat.completions.create(model=gw.k("solo"), messages=[{"role": "user", "content": content}])
    assert fresh_upstream.requests[-1].body["messages"] == [{"role": "user", "content": content}]
    assert answer.choices[0].message.content == "echo: what is this? [image_url]"
    assert row(gw, answer.choices[0].model_extra["completion_id"]).messages == [
        {"role": "user", "content": "what is this? "}
    ]


BAD_SCHEMA = {"type": "function", "function": {"name": "f", "parameters": {"type": "objekt"}}}


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"tools": [BAD_SCHEMA]}, "tools[0].function.parameters is not a valid JSON schema: 'objekt' is not valid"),
        ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools[0].function.name must be"),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "get_time"}}},
            "tool_choice names tool 'get_time', which is not in tools (function tools: 'get_weather')",
        ),
        ({"tool_choice": "required"}, "tool_choice 'required' needs tools"),
        ({"parallel_tool_calls": True}, "parallel_tool_calls needs tools"),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": 5}}}},
            "response_format.json_schema.schema is not a valid JSON schema",
        ),
        ({"response_format": {"type": "yaml"}}, "response_format.type must be"),
        ({"top_logprobs": 3}, "top_logprobs needs logprobs: true"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "a tool message needs the 'tool_call_id'"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"type": "function"}]}]}, "tool_calls[0] needs an 'id'"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "a text part needs a string 'text'"),
        ({"metadata": {"n": 1}}, "metadata must be an object of string values"),
        ({"tags": ["a"]}, "'tags' is not supported by this server"),
    ],
)
def test_bad_input_is_refused_with_its_reason(gw: Gateway, fresh_upstream, change, needle):
    before = count(gw)
    r = httpx.post(
        gw.api_url + "/chat/completions",
        headers={"Authorization": f"Bearer {gw.server.api_key}"},
        json={"model": gw.k("solo"), "messages": HI, **change},
    )
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]["message"] and r.json()["error"]["code"] == "INVALID_INPUT"
    assert fresh_upstream.requests == [] and count(gw) == before
