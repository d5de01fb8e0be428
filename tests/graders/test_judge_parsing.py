"""Judge prompts (our templates and the official client's) and robust parsing of answers."""

from __future__ import annotations

import inspect
import re

import pytest

from adaptive_engine.server.domains.graders.judges import (
    JudgeParseError,
    _passages,
    _statements,
    parse_verdict,
    render_judge_prompt,
)

EXAMPLES = [{"input": [{"role": "user", "content": "Say hi"}], "output": "Hello!", "pass": True, "reasoning": "kind"}]
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]


@pytest.mark.parametrize(
    "text, verdict",
    [
        ('{"reasoning": "fine", "score": "PASS"}', "PASS"),
        ('Sure! ```json\n{"reasoning": "no", "score": "FAIL"}\n```', "FAIL"),
        ('{"reasoning": "broken json, "score": "NA"', "NA"),
        ("score: fail because it is rude", "FAIL"),
        ("The verdict is PASS.", "PASS"),
        ('{"score": "n/a", "reasoning": "not applicable"}', "NA"),
        ('{"reasoning": "rude", "score": 0}', "FAIL"),
        ('{"reasoning": "kind", "score": true}', "PASS"),
        ('{\n  "reasoning": "rude",\n  "score": 0.0,\n  "scoreType": "N/A",\n  "sco', "FAIL"),
        ('"score": 1, and more', "PASS"),
    ],
)
def test_parse_verdict(text: str, verdict: str) -> None:
    assert parse_verdict(text).verdict == verdict


@pytest.mark.parametrize(
    "text", ["", "I think it is fine", "PASS or FAIL, hard to say", "{}", '{"score": 0.5}', '"score": 10 points']
)
def test_unparseable_answers(text: str) -> None:
    with pytest.raises(JudgeParseError):
        parse_verdict(text)


def test_reasoning_is_kept() -> None:
    assert parse_verdict('{"reasoning": "It names Paris.", "score": "PASS"}').reasoning == "It names Paris."


def test_default_prompt() -> None:
    system, user = render_judge_prompt(
        criteria="Names the capital.", examples=EXAMPLES, messages=MESSAGES, completion="Paris."
    )
    assert system["role"] == "system" and "EXAMPLE 0" in system["content"] and '"score": "PASS"' in system["content"]
    assert "Capital of France?" in user["content"] and "Paris." in user["content"]
    assert "Names the capital." in user["content"] and "system: Be brief." in user["content"]
    no_examples, _ = render_judge_prompt(criteria="c", examples=[], messages=MESSAGES, completion="x")
    assert "EXAMPLE" not in no_examples["content"]


def test_official_client_templates_render() -> None:
    adaptive_sdk = pytest.importorskip("adaptive_sdk.resources.graders")
    source = inspect.getsource(adaptive_sdk)
    system_t, user_t = re.findall(r'Template=r"""(.*?)"""', source, re.S)[:2]
    system, user = render_judge_prompt(
        criteria="Names the capital.",
        examples=EXAMPLES,
        messages=MESSAGES,
        completion="Paris.",
        system_template=system_t,
        user_template=user_t,
    )
    assert "### ANNOTATION 0 ###" in system["content"] and "Hello!" in system["content"]
    assert "Names the capital." in system["content"]  # {{../criteria}} inside the examples loop
    assert "Capital of France?" in user["content"] and "Paris." in user["content"]
    assert "{{" not in system["content"] + user["content"]


def test_prebuilt_units() -> None:
    assert _statements("Paris is the capital. It is in France! Is it big? ok") == [
        "Paris is the capital.",
        "It is in France!",
        "Is it big?",
    ]
    assert _passages([{"role": "system", "content": "Doc one.\n\nDoc two."}, {"role": "user", "content": "q"}]) == [
        "Doc one.",
        "Doc two.",
        "q",
    ]
