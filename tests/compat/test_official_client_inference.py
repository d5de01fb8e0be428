"""The official client's chat.create (plain and streaming), embeddings.create and models.attach with
wait=True against our server serving the bundled models."""

from __future__ import annotations

import uuid

import pytest

adaptive_sdk = pytest.importorskip("adaptive_sdk")

pytestmark = pytest.mark.slow

CAPITAL = [{"role": "user", "content": "What is the capital of France? Answer in one sentence."}]
PARIS = "The capital of France is Paris."


@pytest.fixture
def official(served):
    client = adaptive_sdk.Adaptive(base_url=served.server.base_url, api_key=served.server.api_key)
    client.set_default_use_case(served.use_case)
    return client


def test_chat_plain(official, served) -> None:
    answer = official.chat.create(messages=CAPITAL, temperature=0, max_tokens=16, labels={"src": "compat"})
    assert answer.choices[0].message.content == PARIS
    assert answer.choices[0].model == served.chat_model
    assert uuid.UUID(answer.choices[0].completion_id) and isinstance(answer.session_id, uuid.UUID)
    assert answer.usage.total_tokens == answer.usage.prompt_tokens + answer.usage.completion_tokens


def test_chat_streaming(official, served) -> None:
    chunks = list(
        official.chat.create(
            messages=CAPITAL,
            model=served.chat_model,
            temperature=0,
            max_tokens=16,
            stream=True,
            stream_include_usage=True,
        )
    )
    assert "".join(c.choices[0].delta.content for c in chunks if c.choices) == PARIS
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8


def test_embeddings(official, served) -> None:
    answer = official.embeddings.create(input="hello world", model=served.embedding_model)
    assert len(answer.data[0].embedding) == 384
    packed = official.embeddings.create(input="hello world", model=served.embedding_model, encoding_format="Base64")
    assert isinstance(packed.data[0].embedding, str)


def test_attach_bundled_model_and_chat(official, served) -> None:
    key = f"compat-{uuid.uuid4().hex[:8]}"
    official.use_cases.create(key=key)
    service = official.models.attach(served.chat_model, wait=True, make_default=True, use_case=key)
    assert service.model.online.value == "ONLINE" and service.is_default
    assert (
        official.chat.create(messages=CAPITAL, use_case=key, temperature=0, max_tokens=16).choices[0].message.content
        == PARIS
    )
    with pytest.raises(Exception, match="not attached"):
        official.chat.create(messages=CAPITAL, use_case=key, model=served.external_model)
