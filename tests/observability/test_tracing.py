"""OpenTelemetry spans of LLM calls (issue 16): with ADAPTIVE_OPENTELEMETRY on, each chat, completion and embedding
call through a live server makes a CLIENT span with the GenAI semantic conventions' attributes, a child of the
request's HTTP span (FastAPI's); content only with ADAPTIVE_OPENTELEMETRY_CAPTURE_CONTENT; nothing when off.
Spans are read from the OpenTelemetry SDK's in-memory exporter."""

from __future__ import annotations

import contextlib
import json
import uuid
from collections.abc import Iterator

import openai
import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from adaptive_engine.server.observability.tracing import TRACER_NAME
from tests.inference.fixtures import API_KEY
from tests.inference.gateway_world import Gateway, build
from tests.support import LiveServer, make_settings, private_postgres_database

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """The process's tracer provider (an SDK one, set here unless a test set one before) exporting to memory."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    assert isinstance(trace.get_tracer_provider(), TracerProvider)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    yield memory
    memory.shutdown()  # the processor stays on the provider; a shut exporter keeps nothing


def _world(database: str | None, tmp_path_factory: pytest.TempPathFactory, upstream, **settings) -> Iterator[Gateway]:
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(private_postgres_database()) if database else None
        live = stack.enter_context(LiveServer(make_settings(tmp_path_factory.mktemp("traced"), url, **settings)))
        gw = build(live, upstream)
        stack.callback(gw.admin.close)
        yield gw


@pytest.fixture(scope="module")
def traced(database: str | None, tmp_path_factory: pytest.TempPathFactory, upstream, exporter) -> Iterator[Gateway]:
    yield from _world(database, tmp_path_factory, upstream, opentelemetry=True)


def llm_spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.instrumentation_scope.name == TRACER_NAME]


def test_chat_span_is_a_child_of_the_http_span(traced: Gateway, exporter: InMemorySpanExporter) -> None:
    exporter.clear()
    answer = traced.openai().chat.completions.create(model=traced.k("uc1"), messages=HI, max_tokens=20, temperature=0.5)
    (span,) = llm_spans(exporter)
    model = traced.k("solo")
    assert span.name == f"chat {model}" and span.kind == SpanKind.CLIENT
    attributes = dict(span.attributes)
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.request.model"] == model and attributes["gen_ai.response.model"] == model
    assert attributes["gen_ai.provider.name"] == "openai"
    assert attributes["gen_ai.request.max_tokens"] == 20 and attributes["gen_ai.request.temperature"] == 0.5
    assert attributes["gen_ai.usage.input_tokens"] == answer.usage.prompt_tokens
    assert attributes["gen_ai.usage.output_tokens"] == answer.usage.completion_tokens
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.response.id"] == answer.id
    assert attributes["adaptive.use_case"] == traced.k("uc1")
    assert "gen_ai.input.messages" not in attributes and "gen_ai.output.messages" not in attributes
    # Below the HTTP server span of the same request (through FastAPI's span of the endpoint).
    same_trace = {
        s.context.span_id: s for s in exporter.get_finished_spans() if s.context.trace_id == span.context.trace_id
    }
    ancestors = []
    parent = span.parent
    while parent is not None:
        ancestors.append(same_trace[parent.span_id])
        parent = ancestors[-1].parent
    assert ancestors and ancestors[-1].kind == SpanKind.SERVER
    assert ancestors[-1].attributes["http.route"].endswith("/chat/completions")


def test_streamed_and_failed_calls(traced: Gateway, exporter: InMemorySpanExporter, upstream) -> None:
    exporter.clear()
    client = traced.openai()
    chunks = list(
        client.chat.completions.create(
            model=traced.k("uc1"), messages=HI, stream=True, stream_options={"include_usage": True}
        )
    )
    usage = next(c.usage for c in chunks if c.usage is not None)
    (span,) = llm_spans(exporter)
    assert span.attributes["adaptive.stream"] is True
    assert span.attributes["gen_ai.usage.output_tokens"] == usage.completion_tokens
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)

    exporter.clear()
    refused = traced.k(f"refused{uuid.uuid4().hex[:4]}")
    traced.external(refused, external_model_id=f"fail400x99-{refused}", endpoint=upstream.base_url)
    traced.attach(refused, traced.k("uc1"))
    with pytest.raises(openai.APIStatusError):  # the upstream refused it: 502 here
        client.chat.completions.create(model=f"{traced.k('uc1')}/{refused}", messages=HI)
    (failed,) = llm_spans(exporter)
    assert failed.status.status_code == StatusCode.ERROR and failed.attributes["error.type"] == "400"
    assert any(event.name == "exception" for event in failed.events)


def test_completion_and_embedding_spans(traced: Gateway, exporter: InMemorySpanExporter, upstream) -> None:
    client = traced.openai()
    embedder = traced.k(f"emb{uuid.uuid4().hex[:4]}")
    traced.admin.models.add_external(
        name=embedder,
        key=embedder,
        external_model_id="text-embedding",
        api_key=API_KEY,
        provider="open_ai",
        endpoint=upstream.base_url,
        embedding=True,
    )
    traced.attach(embedder, traced.k("uc1"))
    exporter.clear()
    client.completions.create(model=traced.k("uc1"), prompt="once upon")
    embedded = client.embeddings.create(model=f"{traced.k('uc1')}/{embedder}", input=["a", "b"])
    operations = {s.attributes["gen_ai.operation.name"]: s for s in llm_spans(exporter)}
    assert set(operations) == {"text_completion", "embeddings"}
    assert operations["embeddings"].attributes["gen_ai.usage.input_tokens"] == embedded.usage.prompt_tokens


def test_content_only_when_enabled(tmp_path_factory: pytest.TempPathFactory, upstream, exporter) -> None:
    world = _world(None, tmp_path_factory, upstream, opentelemetry=True, opentelemetry_capture_content=True)
    gw = next(world)
    try:
        exporter.clear()
        answer = gw.openai().chat.completions.create(model=gw.k("uc1"), messages=HI)
        (span,) = llm_spans(exporter)
        assert json.loads(span.attributes["gen_ai.input.messages"]) == HI
        output = json.loads(span.attributes["gen_ai.output.messages"])
        assert output == [{"role": "assistant", "content": answer.choices[0].message.content, "finish_reason": "stop"}]
    finally:
        world.close()


def test_no_spans_when_off(gw: Gateway, exporter: InMemorySpanExporter) -> None:  # noqa: F811
    exporter.clear()
    gw.openai().chat.completions.create(model=gw.k("uc1"), messages=HI)
    assert llm_spans(exporter) == []
