"""Chat, completions and embeddings through the real server: our SDK, the openai client and plain HTTP."""

from __future__ import annotations

import base64
import struct
import uuid

import httpx
import pytest
from sqlalchemy import select

from adaptive_engine import Adaptive
from adaptive_engine.sdk.errors import APIError, NotFoundError
from adaptive_engine.server.db import models as orm
from tests.ab_tests.support import in_db
from tests.inference.fixtures import until_sync

pytestmark = pytest.mark.slow

CAPITAL = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
PARIS = "The capital of France is Paris."


@pytest.fixture
def sdk(served):
    with Adaptive(served.server.base_url, api_key=served.server.api_key) as client:
        client.set_default_use_case(served.use_case)
        yield client


@pytest.fixture
def http(served):
    with httpx.Client(
        base_url=served.api_url, headers={"Authorization": f"Bearer {served.server.api_key}"}, timeout=120
    ) as client:
        yield client


def stored(served, completion_id: str) -> orm.Completion | None:
    async def work(session):
        return await session.get(orm.Completion, uuid.UUID(completion_id))

    return in_db(served.server, work)


def count_completions(served) -> int:
    async def work(session):
        return len((await session.execute(select(orm.Completion.id))).all())

    return in_db(served.server, work)


def test_chat_with_the_default_model_is_stored(served, sdk):
    session_id = uuid.uuid4()
    answer = sdk.chat.create(
        messages=CAPITAL, temperature=0, max_tokens=16, labels={"env": "test"}, session_id=session_id, user="someone"
    )
    assert answer.choices[0].message.content == PARIS
    assert answer.choices[0].finish_reason == "stop"
    assert answer.choices[0].model == served.chat_model
    assert answer.session_id == str(session_id)
    assert answer.usage.completion_tokens == 8 and answer.usage.prompt_tokens > 10
    row = stored(served, answer.choices[0].completion_id)
    assert row is not None
    assert row.completion == PARIS and row.messages == CAPITAL
    assert (row.model_key, row.labels, row.session_id, row.user_ref) == (
        served.chat_model,
        {"env": "test"},
        session_id,
        "someone",
    )
    assert (row.prompt_tokens, row.completion_tokens, row.finish_reason) == (answer.usage.prompt_tokens, 8, "stop")
    assert row.latency_ms > 0 and row.source == "LIVE"


def test_chat_streaming_with_usage(served, sdk):
    chunks = list(
        sdk.chat.create(
            messages=CAPITAL,
            model=served.chat_model,
            temperature=0,
            max_tokens=16,
            stream=True,
            stream_include_usage=True,
        )
    )
    text = "".join(c.choices[0].delta.content for c in chunks if c.choices)
    assert text == PARIS
    assert len([c for c in chunks if c.choices]) > 3
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 8
    completion_id = chunks[0].choices[0].completion_id
    assert all(c.choices[0].completion_id == completion_id for c in chunks if c.choices)
    row = stored(served, completion_id)
    assert row is not None and row.completion == PARIS


def test_store_false_keeps_nothing(served, sdk):
    answer = sdk.chat.create(messages=CAPITAL, temperature=0, max_tokens=3, store=False)
    assert stored(served, answer.choices[0].completion_id) is None


def test_n_choices_are_stored_apart(served, sdk):
    answer = sdk.chat.create(messages=CAPITAL, temperature=0.8, max_tokens=4, n=2)
    ids = [c.completion_id for c in answer.choices]
    assert len(set(ids)) == 2
    rows = [stored(served, i) for i in ids]
    assert all(r is not None for r in rows) and rows[0].request_id == rows[1].request_id


def test_raw_completion(served, http):
    r = http.post(
        "/completions",
        json={"model": served.use_case, "prompt": "The capital of France is", "max_tokens": 4, "temperature": 0},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert "Paris" in body["choices"][0]["text"]
    assert uuid.UUID(body["choices"][0]["completion_id"])
    streamed = http.post(
        "/completions",
        json={
            "model": served.use_case,
            "prompt": "The capital of France is",
            "max_tokens": 4,
            "temperature": 0,
            "stream": True,
        },
    )
    assert streamed.headers["content-type"].startswith("text/event-stream")
    assert streamed.text.rstrip().endswith("data: [DONE]")


def test_embeddings_float_and_base64(served, sdk):
    answer = sdk.embeddings.create(input="A cat sits on the mat.", model=served.embedding_model)
    vector = answer.data[0].embedding
    assert len(vector) == 384 and abs(sum(x * x for x in vector) - 1) < 1e-4
    packed = sdk.embeddings.create(
        input="A cat sits on the mat.", model=served.embedding_model, encoding_format="Base64"
    )
    decoded = list(struct.unpack("<384f", base64.b64decode(packed.data[0].embedding)))
    assert decoded == pytest.approx(vector, abs=1e-6)
    # without a model: the use case's only embedding model
    assert len(sdk.embeddings.create(input="hello").data[0].embedding) == 384


def test_embeddings_double_encoded_body(served, http):
    import json

    r = http.post(
        "/embeddings",
        content=json.dumps(json.dumps({"input": "hi", "model": served.use_case + "/" + served.embedding_model})),
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["data"][0]["embedding"]) == 384


def test_openai_client(served):
    import openai

    client = openai.OpenAI(base_url=served.api_url, api_key=served.server.api_key)
    answer = client.chat.completions.create(model=served.use_case, messages=CAPITAL, temperature=0, max_tokens=16)
    assert answer.choices[0].message.content == PARIS
    stream = client.chat.completions.create(
        model=f"{served.use_case}/{served.chat_model}", messages=CAPITAL, temperature=0, max_tokens=16, stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == PARIS
    vectors = client.embeddings.create(model=f"{served.use_case}/{served.embedding_model}", input=["a", "b"])
    assert [len(d.embedding) for d in vectors.data] == [384, 384]  # the openai client asks for base64
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-use-case", messages=CAPITAL)


def test_external_model_through_the_server(served, sdk, upstream):
    answer = sdk.chat.create(messages=[{"role": "user", "content": "hi there"}], model=served.external_model)
    assert answer.choices[0].message.content == "echo: hi there"
    assert upstream.requests[-1].body["model"] == "gpt-test"
    chunks = list(
        sdk.chat.create(messages=[{"role": "user", "content": "one two"}], model=served.external_model, stream=True)
    )
    assert "".join(c.choices[0].delta.content for c in chunks if c.choices) == "echo: one two"


def test_upstream_failure_is_a_502_and_the_server_stays_up(served, http):
    r = http.post("/chat/completions", json={"model": f"{served.use_case}/{served.broken_model}", "messages": CAPITAL})
    assert r.status_code == 502
    assert r.json()["error"]["message"] == "OpenAI error (500): the model is on fire"
    r = http.post(
        "/chat/completions",
        json={"model": f"{served.use_case}/{served.broken_model}", "messages": CAPITAL, "stream": True},
    )
    assert r.status_code == 502 and "on fire" in r.json()["error"]["message"]
    assert httpx.get(served.server.base_url + "/health").json() == {"status": "ok"}


@pytest.mark.parametrize(
    ("change", "status", "needle"),
    [
        ({"messages": []}, 400, "messages must not be empty"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, 400, "unknown role 'wizard'"),
        ({"max_tokens": -1}, 400, "max_tokens"),
        ({"temperature": 3.5}, 400, "temperature"),
        ({"top_p": 0}, 400, "top_p"),
        ({"n": 0}, 400, "n must be"),
        ({"session_id": "not-a-uuid"}, 400, "session_id"),
        ({"model": "no-such-use-case"}, 404, "no use case or model named 'no-such-use-case'"),
        ({"model": "assistant/no-such-model"}, 404, "model 'no-such-model' not found"),
        ({"model": "assistant/loose-model"}, 404, "model 'loose-model' is not attached to use case 'assistant'"),
        ({"model": "assistant/all-minilm-l6-v2"}, 400, "is a embedding model"),
    ],
)
def test_bad_chat_input_is_rejected_and_stores_nothing(served, http, change, status, needle):
    before = count_completions(served)
    body = {"model": served.use_case, "messages": CAPITAL, "max_tokens": 4, **change}
    r = http.post("/chat/completions", json=body)
    assert r.status_code == status, r.text
    assert needle in r.json()["error"]["message"]
    assert r.json()["error"]["code"] == ("NOT_FOUND" if status == 404 else "INVALID_INPUT")
    assert count_completions(served) == before


def test_bad_embedding_input(served, http):
    for body, needle in [
        ({"model": served.use_case, "input": ""}, "input[0]"),
        ({"model": served.use_case, "input": []}, "must not be empty"),
        ({"model": served.use_case, "input": "x", "encoding_format": "hex"}, "encoding_format"),
        ({"model": f"{served.use_case}/{served.chat_model}", "input": "x"}, "is a chat model"),
    ]:
        r = http.post("/embeddings", json=body)
        assert r.status_code == 400 and needle in r.json()["error"]["message"], r.text


def test_sdk_errors(served, sdk):
    with pytest.raises(NotFoundError):
        sdk.chat.create(messages=CAPITAL, use_case="nope")
    with pytest.raises(APIError):
        sdk.chat.create(messages=CAPITAL, max_tokens=-5)


def test_client_disconnect_cancels_generation(served):
    manager = served.server.app.state.inference
    backend = next(b for b in manager.loaded_backends().values() if getattr(b, "name", "") == served.chat_model)
    stats = backend.stats
    before = stats.cancelled
    with httpx.Client(timeout=120) as client:
        with client.stream(
            "POST",
            served.api_url + "/chat/completions",
            headers={"Authorization": f"Bearer {served.server.api_key}"},
            json={
                "model": served.use_case,
                "stream": True,
                "max_tokens": 400,
                "messages": [{"role": "user", "content": "Write a very long story."}],
            },
        ) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    break  # one chunk read, then hang up
    until_sync(lambda: stats.cancelled > before)


async def test_async_sdk_chat_and_stream(served):
    from adaptive_engine import AsyncAdaptive

    async with AsyncAdaptive(served.server.base_url, api_key=served.server.api_key) as client:
        client.set_default_use_case(served.use_case)
        answer = await client.chat.create(messages=CAPITAL, temperature=0, max_tokens=16)
        assert answer.choices[0].message.content == PARIS
        stream = await client.chat.create(messages=CAPITAL, temperature=0, max_tokens=16, stream=True)
        assert "".join([c.choices[0].delta.content async for c in stream if c.choices]) == PARIS
        vectors = await client.embeddings.create(input="hello", model=served.embedding_model)
        assert len(vectors.vectors()[0]) == 384
