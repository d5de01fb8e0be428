"""Custom graders: user code validated at creation and run in a sandboxed subprocess."""

from __future__ import annotations

import os

import pytest

from adaptive_engine.sdk.errors import ValidationError

CODE = """
def grade(messages, completion, metadata):
    words = len(completion.split())
    if metadata.get("boom"):
        raise RuntimeError("exploded on purpose")
    return {"score": min(words, 10) / 10, "reasoning": f"{words} words"}
"""

ESCAPE = """
import os
def grade(messages, completion, metadata):
    return {"score": 1.0, "reasoning": "pid=%d env=%s" % (os.getpid(), sorted(os.environ))}
"""

SLOW = """
def grade(messages, completion, metadata):
    if completion == "loop":
        while True:
            pass
    return 1
"""


@pytest.fixture
def fast_custom(server):
    grading = server.app.state.grading
    old = grading.custom_timeout_s
    grading.custom_timeout_s = 1.0
    yield
    grading.custom_timeout_s = old


def test_custom_grader_scores_in_a_subprocess(client, use_case, unique) -> None:
    grader = client.graders.create.custom(
        key="words", feedback_key=f"fk-{unique}", description="counts words", code=CODE
    )
    assert grader.grader_config.description == "counts words" and grader.grader_config.has_code
    results = client.graders.grade_batch(
        grader_key="words",
        samples=[
            {"messages": [{"role": "user", "content": "q"}], "completion": "one two three"},
            {"messages": [], "completion": "x", "metadata": {"boom": True}},
            {"messages": [], "completion": " ".join(["w"] * 30)},
        ],
    )
    assert results[0].score == pytest.approx(0.3) and results[0].reasoning == "3 words"
    assert results[1].score is None and "exploded on purpose" in results[1].error
    assert results[2].score == 1.0


def test_custom_code_runs_outside_the_server(client, use_case, unique) -> None:
    client.graders.create.custom(key="probe", feedback_key=f"fk-{unique}", code=ESCAPE)
    result = client.graders.grade(grader_key="probe", messages=[], completion="x")
    assert f"pid={os.getpid()} " not in result.reasoning
    assert "ADAPTIVE" not in result.reasoning  # no inherited environment (keys, database URLs)


def test_custom_time_limit(client, use_case, unique, fast_custom) -> None:
    client.graders.create.custom(key="slow", feedback_key=f"fk-{unique}", code=SLOW)
    looping, fine = client.graders.grade_batch(
        grader_key="slow", samples=[{"messages": [], "completion": "loop"}, {"messages": [], "completion": "ok"}]
    )
    assert looping.score is None and "longer than" in looping.error
    assert fine.score == 1.0


@pytest.mark.parametrize(
    "code, message",
    [
        ("def grade(:\n", "does not parse"),
        ("def other(a, b, c):\n    return 1\n", "must define"),
        ("def grade(a):\n    return 1\n", "three parameters"),
        ("async def grade(a, b, c):\n    return 1\n", "not async"),
        ("   ", "must not be empty"),
    ],
)
def test_bad_custom_code_is_refused(client, use_case, unique, code, message) -> None:
    with pytest.raises(ValidationError, match=message):
        client.graders.create.custom(key="bad", feedback_key=f"fk-{unique}", code=code)
    assert client.graders.list() == []


def test_custom_grader_without_code(client, use_case, unique) -> None:
    client.graders.create.custom(key="decl", feedback_key=f"fk-{unique}", description="scored by a recipe")
    with pytest.raises(ValidationError, match="no code"):
        client.graders.grade(grader_key="decl", messages=[], completion="x")


def test_bad_grade_requests(client, use_case, unique) -> None:
    client.graders.create.custom(key="words", feedback_key=f"fk-{unique}", code=CODE)
    with pytest.raises(ValidationError):
        client.graders.grade_batch(grader_key="words", samples=[])
    with pytest.raises(ValidationError):
        client.graders.grade_batch(grader_key="words", samples=[{"messages": "nope", "completion": "x"}])
    from adaptive_engine.sdk.errors import NotFoundError

    with pytest.raises(NotFoundError):
        client.graders.grade(
            grader_key="words", messages=[], completion="x", completion_id="00000000-0000-0000-0000-000000000000"
        )
