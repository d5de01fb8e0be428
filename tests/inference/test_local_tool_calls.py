"""Tool calls on a local model whose chat template renders tools (inference/tool_calls.py): a forced call is
constrained to the tool's schema, "auto" turns an answer that is a call into one, the calls come back in
OpenAI's shape (streamed too) and are stored; a conversation carrying calls and their results goes on.

The model is the bundled 135M one, registered from a copy of its folder whose template shows tools (its own
template has no tool support, and is refused tools: test_gateway_local)."""

from __future__ import annotations

import json
import re
import uuid

import jsonschema
import openai
import pytest

from adaptive_engine import Adaptive
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.inference.tool_calls import ToolUse
from tests.ab_tests.support import in_db
from tests.inference.fixtures import model_cache_dir, with_tool_template

pytestmark = pytest.mark.slow

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Today's weather in a city",
        "parameters": {
            "type": "object",
            "additionalProperties": False,
            "required": ["city", "unit"],
            "properties": {
                "city": {"type": "string", "minLength": 1, "maxLength": 20},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "additionalProperties": False,
            "required": ["zone"],
            "properties": {"zone": {"type": "string", "maxLength": 12}},
        },
    },
}
ASK = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture(scope="module")
def tool_model(served, tmp_path_factory):
    folder = with_tool_template(model_cache_dir(), tmp_path_factory.mktemp("tool-model") / "smollm2-tools")
    unique = uuid.uuid4().hex[:8]
    use_case = f"tools-{unique}"
    with Adaptive(served.server.base_url, api_key=served.server.api_key) as client:
        client.use_cases.create(key=use_case)
        model = client.models.add_local(path=str(folder), name="SmolLM2 with tools", key=f"smol-tools-{unique}")
        client.models.attach(model.key, wait=True, use_case=use_case)
    return f"{use_case}/{model.key}"


@pytest.fixture
def oa(served):
    return openai.OpenAI(base_url=served.api_url, api_key=served.server.api_key, max_retries=0)


def _arguments(call) -> dict:
    return json.loads(call.function.arguments)


def test_a_forced_call_follows_the_tools_schema(oa, tool_model):
    for seed in range(4):
        answer = oa.chat.completions.create(
            model=tool_model,
            messages=ASK,
            tools=[WEATHER, TIME],
            tool_choice="required",
            temperature=1.0,
            seed=seed,
            max_tokens=48,
        )
        choice = answer.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        [call] = choice.message.tool_calls
        assert call.type == "function" and call.id.startswith("call_")
        schema = {t["function"]["name"]: t["function"]["parameters"] for t in (WEATHER, TIME)}[call.function.name]
        jsonschema.validate(_arguments(call), schema)
    named = oa.chat.completions.create(
        model=tool_model,
        messages=ASK,
        tools=[WEATHER, TIME],
        temperature=0,
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        max_tokens=48,
    )
    [call] = named.choices[0].message.tool_calls
    assert call.function.name == "get_time"
    jsonschema.validate(_arguments(call), TIME["function"]["parameters"])


def test_a_streamed_call_and_its_storage(oa, served, tool_model):
    chunks = list(
        oa.chat.completions.create(
            model=tool_model,
            messages=ASK,
            tools=[WEATHER],
            tool_choice="required",
            temperature=0,
            max_tokens=48,
            stream=True,
        )
    )
    pieces = [tc for c in chunks if c.choices and c.choices[0].delta.tool_calls for tc in c.choices[0].delta.tool_calls]
    assert pieces and pieces[0].function.name == "get_weather" and pieces[0].id.startswith("call_")
    arguments = json.loads("".join(p.function.arguments or "" for p in pieces))
    jsonschema.validate(arguments, WEATHER["function"]["parameters"])
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]
    # Stored with the interaction, so tool-use traffic can be graded and trained on.
    stored = _stored(served, chunks[0].choices[0].model_extra["completion_id"])
    assert stored.finish_reason == "tool_calls" and stored.completion == ""
    assert [(c["id"], c["function"]["name"], json.loads(c["function"]["arguments"])) for c in stored.tool_calls] == [
        (pieces[0].id, "get_weather", arguments)
    ]


def _stored(served, completion_id: str) -> orm.Completion:
    async def work(session):
        return await session.get(orm.Completion, uuid.UUID(completion_id))

    return in_db(served.server, work)


def test_auto_answers_with_text_or_a_call_and_the_conversation_goes_on(oa, tool_model):
    answer = oa.chat.completions.create(model=tool_model, messages=ASK, tools=[WEATHER], temperature=0, max_tokens=48)
    choice = answer.choices[0]
    if choice.message.tool_calls:  # the model chose to call: a well-formed call of a tool of the request
        assert choice.finish_reason == "tool_calls" and choice.message.tool_calls[0].function.name == "get_weather"
    else:
        assert choice.finish_reason in ("stop", "length") and choice.message.content
    # A call and its result in the history: the template renders them and the model answers.
    history = ASK + [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris", "unit": "celsius"})},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18 degrees, sunny"},
    ]
    follow = oa.chat.completions.create(
        model=tool_model, messages=history, tools=[WEATHER], tool_choice="none", temperature=0, max_tokens=24
    )
    assert follow.choices[0].message.content and not follow.choices[0].message.tool_calls


def test_what_a_local_model_cannot_do_with_tools_is_refused(oa, tool_model):
    cases = [
        ({"tools": [{"type": "web_search"}]}, "calls function tools only: tools[0] is a 'web_search' tool"),
        (
            {"tools": [WEATHER], "tool_choice": "required", "response_format": {"type": "json_object"}},
            "cannot follow response_format and a forced tool call at once",
        ),
        (
            {"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "tool_choice names tool 'nope', which is not in tools",
        ),
    ]
    for extra, needle in cases:
        with pytest.raises(openai.BadRequestError, match=re.escape(needle)):
            oa.chat.completions.create(model=tool_model, messages=ASK, max_tokens=8, **extra)


def test_what_counts_as_a_call_in_an_auto_answer():
    use = ToolUse(tools=[WEATHER], choice="auto")
    args = {"city": "Paris", "unit": "celsius"}
    for text in (
        json.dumps({"name": "get_weather", "arguments": args}),
        f"<tool_call>{json.dumps({'name': 'get_weather', 'arguments': args})}</tool_call>",
        f"  <tool_call>\n{json.dumps({'name': 'get_weather', 'parameters': args})}\n",
    ):
        call = use.call_in(text)
        assert call is not None and call["function"]["name"] == "get_weather"
        assert json.loads(call["function"]["arguments"]) == args
    for text in (
        "It is sunny.",
        json.dumps({"name": "other", "arguments": {}}),
        "{not json",
        json.dumps({"name": "get_weather", "arguments": "city=Paris"}),
        json.dumps([1, 2]),
    ):
        assert use.call_in(text) is None
    assert ToolUse(tools=[WEATHER], choice="none").parses_calls is False
