"""Judges running on registered chat models: the bundled local model (constrained decoding) and external
OpenAI-compatible models (a real fake server on 127.0.0.1)."""

from __future__ import annotations

import uuid

import pytest

from adaptive_engine import Adaptive

pytestmark = pytest.mark.slow

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture
def judge_client(served):
    # Judging on a loaded 2-core machine can take minutes; no timing is asserted.
    with Adaptive(served.server.base_url, api_key=served.server.api_key, timeout_secs=1200) as client:
        client.set_default_use_case(served.use_case)
        yield client


def test_binary_judge_on_the_bundled_model_always_gives_a_verdict(judge_client, served) -> None:
    key = f"capital-{uuid.uuid4().hex[:6]}"
    judge_client.graders.create.binary_judge(
        key=key,
        criteria="The answer names the correct capital city.",
        judge_model=served.chat_model,
        feedback_key=key,
        examples=[{"input": QUESTION, "output": "It is Paris.", "passes": True, "reasoning": "right"}],
    )
    results = judge_client.graders.grade_batch(
        grader_key=key,
        samples=[
            {"messages": QUESTION, "completion": "The capital of France is Paris."},
            {"messages": QUESTION, "completion": "The capital of France is Berlin."},
        ],
    )
    for result in results:
        assert result.error is None
        assert result.score in (0.0, 1.0, None)
        assert result.reasoning and result.reasoning.split(":")[0] in {"PASS", "FAIL", "NA"}


async def test_prebuilt_judges_on_the_bundled_model(served) -> None:
    import asyncio

    from adaptive_engine import AsyncAdaptive

    context = [{"role": "system", "content": "Paris is the capital of France."}] + QUESTION
    async with AsyncAdaptive(served.server.base_url, api_key=served.server.api_key, timeout_secs=1200) as client:
        client.set_default_use_case(served.use_case)
        keys = {}
        for kind in ("ANSWER_RELEVANCY", "FAITHFULNESS", "CONTEXT_RELEVANCY"):
            keys[kind] = f"{kind.lower()}-{uuid.uuid4().hex[:6]}"
            await client.graders.create.prebuilt_judge(key=keys[kind], type=kind, judge_model=served.chat_model)
        # graded together: the local backend batches the three judges' requests
        results = await asyncio.gather(
            *(client.graders.grade(grader_key=key, messages=context, completion="Paris.") for key in keys.values())
        )
        for result in results:
            assert result.error is None, result.error
            assert result.score is None or 0.0 <= result.score <= 1.0
            assert result.reasoning
        # Without context, faithfulness does not apply: no score, and no error.
        empty = await client.graders.grade(grader_key=keys["FAITHFULNESS"], messages=QUESTION, completion="Paris.")
        assert empty.score is None and empty.error is None and empty.reasoning.startswith("NA")


def test_external_judge_models(judge_client, served) -> None:
    # The fake provider echoes the prompt: no verdict in it, so the sample records a parse error.
    key = f"ext-{uuid.uuid4().hex[:6]}"
    judge_client.graders.create.binary_judge(
        key=key, criteria="The answer is short.", judge_model=served.external_model, feedback_key=key
    )
    [echoed] = judge_client.graders.grade_batch(grader_key=key, samples=[{"messages": QUESTION, "completion": "Paris"}])
    assert echoed.score is None and "no verdict" in echoed.error
    # A provider that fails: every sample records the upstream error; the call itself succeeds.
    key = f"broken-{uuid.uuid4().hex[:6]}"
    judge_client.graders.create.binary_judge(
        key=key, criteria="The answer is short.", judge_model=served.broken_model, feedback_key=key
    )
    results = judge_client.graders.grade_batch(
        grader_key=key,
        samples=[{"messages": QUESTION, "completion": "Paris"}, {"messages": QUESTION, "completion": "Rome"}],
    )
    assert all(r.score is None and "judge model" in r.error for r in results)
