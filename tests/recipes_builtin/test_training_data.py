"""Rows → training records: every accepted shape, and bad rows refused with the row and the problem named."""

from __future__ import annotations

import pytest

from adaptive_engine.recipe.training import (
    GrpoSettings,
    TrainingInputError,
    TrainSettings,
    dpo_records,
    prompt_records,
    sft_records,
)

USER = {"role": "user", "content": "hi"}
REPLY = {"role": "assistant", "content": "hello"}


def test_sft_accepts_messages_and_prompt_completion() -> None:
    records = sft_records([
        {"messages": [{"role": "system", "content": "be brief"}, USER, REPLY]},
        {"prompt": "hi", "completion": "hello"},
        {"prompt": [USER], "completion": REPLY},
    ])
    assert records[0] == {"prompt": [{"role": "system", "content": "be brief"}, USER], "completion": [REPLY]}
    assert records[1] == records[2] == {"prompt": [USER], "completion": [REPLY]}


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"prompt": "q", "chosen": "a", "rejected": "b"}], "row 0 is a preference pair"),
        ([{"prompt": "q"}], "row 0 has no completion"),
        ([{"messages": [USER]}], "row 0.messages must end with an assistant reply"),
        ([{"prompt": "q", "completion": "  "}], "row 0 has an empty completion"),
        ([{"prompt": "q", "completion": "a"}, {"prompt": [{"role": "robot", "content": "x"}], "completion": "a"}],
         "row 1.prompt[0] has unknown role 'robot'"),
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
        {"prompt": [USER], "chosen": [{"role": "assistant", "content": "a"}],
         "rejected": [{"role": "assistant", "content": "b"}]}
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
