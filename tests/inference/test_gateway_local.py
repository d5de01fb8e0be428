"""What local models do not implement is refused by name before any generation (openai_fields.refuse_for_local);
what they implement still works with the fields that mean nothing to change; structured output is enforced
by constrained decoding (inference/grammar.py)."""

from __future__ import annotations

import httpx
import pytest

from tests.inference.engine_helpers import llamacpp_logits
from tests.inference.test_api import CAPITAL, PARIS, count_completions

pytestmark = pytest.mark.slow

IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
TOOL = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}


@pytest.fixture
def http(served):
    with httpx.Client(
        base_url=served.api_url, headers={"Authorization": f"Bearer {served.server.api_key}"}, timeout=120
    ) as client:
        yield client


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            {"tools": [TOOL]},
            "model 'smollm2-135m-instruct' cannot call tools: its chat template has no tool support; remove 'tools'",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": "x"},
                    {
                        "role": "assistant",
                        "tool_calls": [{"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
                    },
                    {"role": "tool", "tool_call_id": "c", "content": "1"},
                ]
            },
            "cannot call tools: its chat template has no tool support: messages[1] is a tool call or a tool result",
        ),
        (
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {
                        "name": "u",
                        "schema": {"type": "array", "items": {"type": "integer"}, "uniqueItems": True},
                    },
                }
            },
            (
                "response_format: this schema cannot be enforced on local model 'smollm2-135m-instruct':"
                " Unimplemented keys"
            ),
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, IMAGE]}]},
            "model 'smollm2-135m-instruct' takes text only: messages[0] has a 'image_url' content part",
        ),
        ({"reasoning_effort": "low"}, "'reasoning_effort' is not supported by local model 'smollm2-135m-instruct'"),
        (
            {"messages": [{"role": "user", "content": "hi", "name": "bob"}]},
            "messages[0].name is not supported by local model",
        ),
    ],
)
def test_local_models_refuse_what_they_do_not_implement(served, http, change, needle):
    before = count_completions(served)
    r = http.post("/chat/completions", json={"model": served.use_case, "messages": CAPITAL, "max_tokens": 4, **change})
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]["message"] and r.json()["error"]["details"]["param"]
    assert count_completions(served) == before


def test_logprobs_on_completions_are_refused_locally_by_name(served, http):
    before = count_completions(served)
    r = http.post("/completions", json={"model": served.use_case, "prompt": "Paris is", "max_tokens": 4, "logprobs": 2})
    assert r.status_code == 400, r.text
    assert "logprobs on /completions is not supported by local models" in r.json()["error"]["message"]
    assert count_completions(served) == before


def test_logprobs_of_a_local_chat_are_the_models_own(served, chat_backend):
    """Greedy: each token is the most likely one, its log probability heads its alternatives, the tokens spell
    the answer; the streamed chunks carry the same entries; and the figures are the model's (one forward pass
    over the prompt gives the first token's distribution)."""
    import math

    import openai
    import torch

    client = openai.OpenAI(base_url=served.api_url, api_key=served.server.api_key, max_retries=0)
    answer = client.chat.completions.create(
        model=served.use_case, messages=CAPITAL, temperature=0, max_tokens=16, logprobs=True, top_logprobs=3
    )
    choice = answer.choices[0]
    assert choice.message.content == PARIS
    content = choice.logprobs.content
    assert "".join(t.token for t in content) == PARIS
    for token in content:
        assert len(token.top_logprobs) == 3 and token.logprob <= 0
        assert token.top_logprobs[0].token == token.token and math.isclose(token.top_logprobs[0].logprob, token.logprob)
        assert token.top_logprobs[0].logprob >= token.top_logprobs[1].logprob >= token.top_logprobs[2].logprob
        assert bytes(token.bytes).decode() == token.token
    # The first token's log probability, from the model itself as the serving engine (llama.cpp) computes it.
    ids = chat_backend.prompt_ids(_request(CAPITAL))
    expected = torch.log_softmax(llamacpp_logits(None, ids).float(), -1).max().item()
    assert math.isclose(content[0].logprob, expected, abs_tol=1e-3)

    chunks = list(
        client.chat.completions.create(
            model=served.use_case, messages=CAPITAL, temperature=0, max_tokens=16, logprobs=True, stream=True
        )
    )
    streamed = [t for c in chunks if c.choices and c.choices[0].logprobs for t in c.choices[0].logprobs.content]
    assert [(t.token, round(t.logprob, 4)) for t in streamed] == [(t.token, round(t.logprob, 4)) for t in content]
    assert all(t.top_logprobs == [] for t in streamed)
    # Sampled rows get the entries of what they drew (their bytes: a character may span two tokens).
    sampled = client.chat.completions.create(
        model=served.use_case, messages=CAPITAL, temperature=1.0, max_tokens=8, n=2, seed=3, logprobs=True
    )
    for c in sampled.choices:
        drawn = b"".join(bytes(t.bytes) for t in c.logprobs.content)
        assert drawn.decode(errors="ignore").startswith(c.message.content)


def _request(messages):
    from adaptive_engine.server.inference.backends.base import ChatMessage, GenerationRequest

    return GenerationRequest(messages=[ChatMessage(m["role"], m["content"]) for m in messages])


def test_neutral_values_and_text_parts_work_locally(served, http):
    r = http.post(
        "/chat/completions",
        json={
            "model": served.use_case,
            "max_completion_tokens": 16,
            "temperature": 0,
            "logprobs": False,
            "response_format": {"type": "text"},
            "metadata": {"k": "v"},
            "messages": [{"role": "user", "content": [{"type": "text", "text": CAPITAL[0]["content"]}]}],
        },
    )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] == PARIS


def test_responses_on_a_local_model(served):
    import openai

    client = openai.OpenAI(base_url=served.api_url, api_key=served.server.api_key, max_retries=0)
    response = client.responses.create(
        model=served.use_case, input=CAPITAL[0]["content"], temperature=0, max_output_tokens=16
    )
    assert response.output_text == PARIS and response.status == "completed"
    events = list(
        client.responses.create(
            model=served.use_case, input=CAPITAL[0]["content"], temperature=0, max_output_tokens=16, stream=True
        )
    )
    assert events[-1].type == "response.completed" and events[-1].response.output_text == PARIS
    with pytest.raises(openai.BadRequestError, match="its chat template has no tool support"):
        client.responses.create(model=served.use_case, input="hi", tools=[{"type": "function", "name": "f"}])


CITY = {
    "type": "object",
    "additionalProperties": False,
    "required": ["city", "population", "capital"],
    "properties": {
        "city": {"type": "string", "minLength": 1, "maxLength": 24},
        "population": {"type": "integer", "minimum": 0, "maximum": 100000000},
        "capital": {"type": "boolean"},
    },
}


def test_json_schema_output_on_a_local_model_always_validates(served):
    """50 sampled completions (temperature 1) of a 135M model: every one parses and validates."""
    import json

    import jsonschema
    import openai

    client = openai.OpenAI(base_url=served.api_url, api_key=served.server.api_key, max_retries=0)
    response_format = {"type": "json_schema", "json_schema": {"name": "city", "schema": CITY, "strict": True}}
    texts = []
    for seed in range(5):
        answer = client.chat.completions.create(
            model=served.use_case,
            messages=[{"role": "user", "content": "Describe a city as JSON."}],
            n=10,
            temperature=1.0,
            seed=seed,
            max_tokens=64,
            response_format=response_format,
        )
        texts += [c.message.content for c in answer.choices if c.finish_reason == "stop"]
    assert len(texts) == 50
    for text in texts:
        jsonschema.validate(json.loads(text), CITY)
    streamed = client.chat.completions.create(
        model=served.use_case,
        messages=CAPITAL,
        temperature=0,
        max_tokens=48,
        response_format={"type": "json_object"},
        stream=True,
    )
    assert isinstance(json.loads("".join(c.choices[0].delta.content or "" for c in streamed if c.choices)), dict)
