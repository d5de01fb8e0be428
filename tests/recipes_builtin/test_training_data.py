"""Rows → training records: every accepted shape, and bad rows refused with the row and the problem named."""

from __future__ import annotations

import json
import re

import pytest

from adaptive_engine.recipe.training import (
    GrpoSettings,
    TrainingInputError,
    TrainSettings,
    check_template,
    dpo_records,
    prompt_records,
    sft_records,
)

USER = {"role": "user", "content": "hi"}
REPLY = {"role": "assistant", "content": "hello"}
CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def m(message: dict) -> dict:
    """A message as records hold it: every message has the tool keys (one Arrow schema for all rows)."""
    return {"tool_calls": None, "tool_call_id": None, **message}


def test_sft_accepts_messages_and_prompt_completion() -> None:
    records = sft_records(
        [
            {"messages": [{"role": "system", "content": "be brief"}, USER, REPLY]},
            {"prompt": "hi", "completion": "hello"},
            {"prompt": [USER], "completion": REPLY},
        ]
    )
    assert records[0] == {
        "prompt": [m({"role": "system", "content": "be brief"}), m(USER)],
        "completion": [m(REPLY)],
        "tools": None,
    }
    assert records[1] == records[2] == {"prompt": [m(USER)], "completion": [m(REPLY)], "tools": None}


def test_tool_conversations_as_the_gateway_logs_them() -> None:
    calling = {"role": "assistant", "content": None, "tool_calls": [CALL]}
    result = {"role": "tool", "tool_call_id": "call_1", "content": "18 degrees"}
    [record] = sft_records([{"messages": [USER, calling, result, REPLY], "tools": TOOLS}])
    assert record["prompt"] == [m(USER), m({**calling, "content": ""}), m(result)] and record["completion"] == [
        m(REPLY)
    ]
    assert json.loads(record["tools"]) == TOOLS
    # A call as the completion itself (what a tool-calling answer is), and as a preference side.
    [record] = sft_records([{"prompt": "weather?", "completion": calling, "tools": TOOLS}])
    assert record["completion"] == [m({**calling, "content": ""})]
    [pair] = dpo_records([{"prompt": "weather?", "chosen": calling, "rejected": "I do not know.", "tools": TOOLS}])
    assert pair["chosen"][0]["tool_calls"] == [CALL] and json.loads(pair["tools"]) == TOOLS
    for rows, message in [
        (
            [{"messages": [USER, {"role": "user", "content": "x", "tool_calls": [CALL]}, REPLY]}],
            "row 0.messages[1] has tool_calls but is not an assistant message",
        ),
        (
            [{"messages": [USER, {"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": {}}}]}]}],
            "row 0.messages[1].tool_calls[0] must be",
        ),
        ([{"prompt": "q", "completion": "a", "tools": "get_weather"}], "row 0.tools must be a list of tool objects"),
    ]:
        with pytest.raises(TrainingInputError, match=re.escape(message)):
            sft_records(rows)


def test_tool_rows_need_a_template_that_renders_tools() -> None:
    class Tokenizer:
        chat_template = "{% for message in messages %}{{ message.content }}{% endfor %}"

    plain = sft_records([{"prompt": "hi", "completion": "hello"}])
    check_template(plain, Tokenizer(), "m")  # no tool use: any template
    tooled = plain + sft_records([{"prompt": "weather?", "completion": {"role": "assistant", "tool_calls": [CALL]}}])
    with pytest.raises(
        TrainingInputError, match="row 1 holds tool calls or tools, but the chat template of m has no tool support"
    ):
        check_template(tooled, Tokenizer(), "m")
    Tokenizer.chat_template += "{% if tools %}{{ tools | tojson }}{% endif %}"
    check_template(tooled, Tokenizer(), "m")


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"prompt": "q", "chosen": "a", "rejected": "b"}], "row 0 is a preference pair"),
        ([{"prompt": "q"}], "row 0 has no completion"),
        ([{"messages": [USER]}], "row 0.messages must end with an assistant reply"),
        ([{"prompt": "q", "completion": "  "}], "row 0 has an empty completion"),
        (
            [{"prompt": "q", "completion": "a"}, {"prompt": [{"role": "robot", "content": "x"}], "completion": "a"}],
            "row 1.prompt[0] has unknown role 'robot'",
        ),
        ([{"prompt": "", "completion": "a"}], "row 0.prompt is empty"),
        (["text"], "row 0 is not an object"),
        ([], "no rows to train on"),
    ],
)
def test_sft_refuses_bad_rows(rows: list, message: str) -> None:
    with pytest.raises(TrainingInputError, match=message.replace("[", r"\[").replace(".", r"\.")):
        sft_records(rows)


def test_dpo_records_and_refusals() -> None:
    assert dpo_records([{"prompt": "hi", "chosen": "a", "rejected": "b"}]) == [
        {
            "prompt": [m(USER)],
            "chosen": [m({"role": "assistant", "content": "a"})],
            "rejected": [m({"role": "assistant", "content": "b"})],
            "tools": None,
        }
    ]
    with pytest.raises(TrainingInputError, match="row 0 is not a preference pair"):
        dpo_records([{"prompt": "hi", "completion": "a"}])
    with pytest.raises(TrainingInputError, match="identical chosen and rejected"):
        dpo_records([{"prompt": "hi", "chosen": "a", "rejected": "a"}])
    with pytest.raises(TrainingInputError, match="no preference pairs"):
        dpo_records([])


def test_prompt_records_keep_other_fields_and_drop_the_reply() -> None:
    assert prompt_records([{"messages": [USER, REPLY], "answer": "x"}]) == [{"prompt": [USER], "answer": "x"}]
    with pytest.raises(TrainingInputError, match="row 0 has neither prompt nor messages"):
        prompt_records([{"answer": "x"}])


def test_settings_are_checked() -> None:
    with pytest.raises(TrainingInputError, match="learning_rate must be > 0"):
        TrainSettings(learning_rate=0)
    with pytest.raises(TrainingInputError, match="num_generations must be >= 2"):
        GrpoSettings(num_generations=1)
    with pytest.raises(TrainingInputError, match="steps_per_generation must be >= 1"):
        GrpoSettings(steps_per_generation=0)
    assert TrainSettings(lora={"r": 4}).lora.r == 4
