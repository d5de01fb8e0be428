"""The external backend against a real fake OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import socket

import httpx
import pytest

from adaptive_engine.server.inference.backends.base import (
    BackendInvalidRequest,
    BackendNotReady,
    ChatMessage,
    GenerationParams,
    GenerationRequest,
    TextDelta,
    UpstreamError,
    UpstreamTimeout,
    Usage,
)
from adaptive_engine.server.inference.backends.external import (
    GOOGLE_BASE_URL,
    NOT_THE_API,
    ExternalBackend,
    ExternalModelConfig,
    make_http_client,
)
from tests.inference.fixtures import API_KEY, FakeUpstream


def chat(text: str, **params) -> GenerationRequest:
    return GenerationRequest(messages=[ChatMessage("user", text)], params=GenerationParams(**params))


@pytest.fixture(scope="module")
async def http_client():
    http = make_http_client()
    yield http
    await http.aclose()


async def backend_for(
    upstream: FakeUpstream, http_client: httpx.AsyncClient, model: str = "gpt-test", **kw
) -> ExternalBackend:
    config = ExternalModelConfig(
        provider="openai", external_model_id=model, api_key=kw.pop("api_key", API_KEY), endpoint=upstream.base_url, **kw
    )
    backend = ExternalBackend(config, http_client)
    await backend.load()
    return backend


async def test_chat_plain(fresh_upstream, http_client):
    backend = await backend_for(fresh_upstream, http_client)
    result = await backend.generate(chat("hello there", max_tokens=7, temperature=0.2, top_p=0.9, stop=["x"], seed=3))
    assert [c.text for c in result.choices] == ["echo: hello there"]
    assert result.choices[0].finish_reason == "stop"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (5, 3)
    sent = fresh_upstream.requests[-1]
    assert sent.path == "/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.body["model"] == "gpt-test"
    assert sent.body["messages"] == [{"role": "user", "content": "hello there"}]
    assert (sent.body["max_tokens"], sent.body["temperature"], sent.body["top_p"]) == (7, 0.2, 0.9)
    assert (sent.body["stop"], sent.body["seed"]) == (["x"], 3)
    assert "stream" not in sent.body


async def test_chat_n_choices(fresh_upstream, http_client):
    backend = await backend_for(fresh_upstream, http_client)
    result = await backend.generate(chat("hi", n=3))
    assert [c.index for c in result.choices] == [0, 1, 2]
    assert fresh_upstream.requests[-1].body["n"] == 3


async def test_completion_prompt(fresh_upstream, http_client):
    backend = await backend_for(fresh_upstream, http_client)
    result = await backend.generate(GenerationRequest(prompt="once upon"))
    assert result.choices[0].text == "echo: once upon"
    assert fresh_upstream.requests[-1].path == "/v1/completions"


async def test_chat_streaming_passthrough(fresh_upstream, http_client):
    backend = await backend_for(fresh_upstream, http_client)
    events = [e async for e in backend.stream(chat("one two three", n=2))]
    deltas = [e for e in events if isinstance(e, TextDelta)]
    for index in (0, 1):
        mine = [d for d in deltas if d.index == index]
        assert "".join(d.text for d in mine) == "echo: one two three"
        assert len(mine) > 2  # passed through chunk by chunk, not gathered
        assert mine[-1].finish_reason == "stop"
    assert events[-1] == Usage(prompt_tokens=5, completion_tokens=8)
    sent = fresh_upstream.requests[-1].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}


async def test_embeddings(fresh_upstream, http_client):
    backend = await backend_for(fresh_upstream, http_client, model="text-embedding-test")
    result = await backend.embed(["a", "abc"])
    assert result.vectors == [[1.0, 1.0, 0.5], [3.0, 1.0, 0.5]]  # sorted back by index
    assert result.usage.prompt_tokens == 4
    assert fresh_upstream.requests[-1].path == "/v1/embeddings"
    with pytest.raises(BackendInvalidRequest):
        await backend.embed([])


@pytest.mark.parametrize(
    ("model", "status", "message"),
    [
        ("broken", 500, "the model is on fire"),
        ("google-style", 400, "API key not valid for this call"),
    ],
)
async def test_upstream_errors_carry_status_and_message(fresh_upstream, http_client, model, status, message):
    backend = await backend_for(fresh_upstream, http_client, model=model)
    with pytest.raises(UpstreamError) as caught:
        await backend.generate(chat("hi"))
    assert (caught.value.status, caught.value.upstream_message, caught.value.provider) == (status, message, "OpenAI")
    assert caught.value.message == f"OpenAI error ({status}): {message}"
    assert caught.value.http_status == 502 and caught.value.code == "UPSTREAM_ERROR"
    with pytest.raises(UpstreamError) as caught:
        [e async for e in backend.stream(chat("hi"))]
    assert (caught.value.status, caught.value.upstream_message) == (status, message)


async def test_answers_not_in_the_api_format_are_not_echoed(fresh_upstream, http_client):
    """An error body that is not the API's (an HTML page, any other service's answer) never reaches the caller:
    one generic message, no status, the cause in the server log."""
    backend = await backend_for(fresh_upstream, http_client, model="not-json")
    for call in (backend.generate(chat("hi")), _drain(backend.stream(chat("hi")))):
        with pytest.raises(UpstreamError) as caught:
            await call
        assert caught.value.upstream_message == NOT_THE_API and caught.value.status is None
        assert "bad gateway" not in caught.value.message and caught.value.http_status == 502


async def _drain(events):
    return [e async for e in events]


async def test_bad_api_key(fresh_upstream, http_client):
    backend = await backend_for(fresh_upstream, http_client, api_key="wrong")
    with pytest.raises(UpstreamError) as caught:
        await backend.embed(["x"])
    assert caught.value.status == 401 and "Incorrect API key" in caught.value.message


async def test_timeout(fresh_upstream, http_client):
    fresh_upstream.slow_seconds = 3.0
    backend = await backend_for(fresh_upstream, http_client, model="slow", timeout=0.2)
    with pytest.raises(UpstreamTimeout) as caught:
        await backend.generate(chat("hi"))
    assert "no answer within 0.2 s" in caught.value.message
    assert caught.value.code == "UPSTREAM_TIMEOUT" and caught.value.http_status == 504
    with pytest.raises(UpstreamTimeout):
        [e async for e in backend.stream(chat("hi"))]


async def test_unreachable_upstream(http_client):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = ExternalModelConfig(
        provider="openai", external_model_id="m", api_key="k", endpoint=f"http://127.0.0.1:{port}/v1"
    )
    backend = ExternalBackend(config, http_client)
    await backend.load()
    with pytest.raises(UpstreamError) as caught:
        await backend.generate(chat("hi"))
    # The same answer as for an open port that does not speak the API (see above): no port scanning.
    assert caught.value.status is None and caught.value.upstream_message == NOT_THE_API


async def test_azure_url_and_header(fresh_upstream, http_client):
    config = ExternalModelConfig(
        provider="azure",
        external_model_id="my-deployment",
        api_key=API_KEY,
        endpoint=fresh_upstream.root,
        api_version="2024-06-01",
    )
    backend = ExternalBackend(config, http_client)
    await backend.load()
    result = await backend.generate(chat("hi azure"))
    assert result.choices[0].text == "echo: hi azure"
    sent = fresh_upstream.requests[-1]
    assert sent.path == "/openai/deployments/my-deployment/chat/completions"
    assert sent.query == {"api-version": "2024-06-01"}
    assert sent.headers["api-key"] == API_KEY and "authorization" not in sent.headers
    assert "model" not in sent.body
    events = [e async for e in backend.stream(chat("streamed"))]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "echo: streamed"
    assert (await backend.embed(["abcd"])).vectors == [[4.0, 1.0, 0.5]]
    assert fresh_upstream.requests[-1].path == "/openai/deployments/my-deployment/embeddings"


async def test_azure_deployment_url_endpoint(fresh_upstream, http_client):
    endpoint = f"{fresh_upstream.root}/openai/deployments/dep-2/chat/completions?api-version=2025-01-01-preview"
    backend = ExternalBackend(
        ExternalModelConfig(provider="azure", external_model_id="gpt-4o", api_key=API_KEY, endpoint=endpoint),
        http_client,
    )
    await backend.load()
    await backend.generate(chat("hi"))
    sent = fresh_upstream.requests[-1]
    assert sent.path == "/openai/deployments/dep-2/chat/completions"
    assert sent.query == {"api-version": "2025-01-01-preview"}
    with pytest.raises(UpstreamError) as caught:  # the deployment named in the URL is the one used
        bad = ExternalBackend(
            ExternalModelConfig(provider="azure", external_model_id="x", api_key="nope", endpoint=endpoint), http_client
        )
        await bad.load()
        await bad.generate(chat("hi"))
    assert caught.value.status == 401 and caught.value.provider == "Azure OpenAI"


def test_default_urls():
    google = ExternalBackend(ExternalModelConfig(provider="google", external_model_id="gemini-2.0-flash", api_key="k"))
    assert google.url("chat/completions") == GOOGLE_BASE_URL + "chat/completions"
    openai = ExternalBackend(ExternalModelConfig(provider="openai", external_model_id="gpt-4o", api_key="k"))
    assert openai.url("embeddings") == "https://api.openai.com/v1/embeddings"
    azure = ExternalBackend(
        ExternalModelConfig(
            provider="azure", external_model_id="dep", api_key="k", endpoint="https://res.openai.azure.com/"
        )
    )
    assert azure.url("chat/completions") == (
        "https://res.openai.azure.com/openai/deployments/dep/chat/completions?api-version=2024-10-21"
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"provider": "cohere", "external_model_id": "m", "api_key": "k"},
        {"provider": "openai", "external_model_id": " ", "api_key": "k"},
        {"provider": "azure", "external_model_id": "m", "api_key": "k"},
        {"provider": "openai", "external_model_id": "m", "api_key": "k", "endpoint": "ftp://x"},
        {"provider": "openai", "external_model_id": "m", "api_key": "k", "timeout": 0},
    ],
)
def test_invalid_config(kwargs):
    with pytest.raises(BackendInvalidRequest):
        ExternalModelConfig(**kwargs)


async def test_not_loaded_and_own_client(fresh_upstream):
    backend = ExternalBackend(
        ExternalModelConfig(provider="openai", external_model_id="m", api_key=API_KEY, endpoint=fresh_upstream.base_url)
    )
    assert not (await backend.health()).ok
    with pytest.raises(BackendNotReady):
        await backend.generate(chat("hi"))
    await backend.load()  # makes its own pooled http_client
    assert (await backend.health()).ok
    assert (await backend.generate(chat("hi"))).choices[0].text == "echo: hi"
    await backend.unload()
    assert not (await backend.health()).ok
