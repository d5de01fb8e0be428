"""OpenTelemetry spans of LLM calls, with the GenAI semantic conventions' attributes (gen_ai.*).

On with ``ADAPTIVE_OPENTELEMETRY`` (the switch of FastAPI's HTTP spans too): each chat, completion or embedding
call gets a CLIENT span, a child of the request's HTTP span, sent to the process's tracer provider (OTEL_*
variables or the operator's own set-up). Message content is recorded only with
``ADAPTIVE_OPENTELEMETRY_CAPTURE_CONTENT`` (prompts and answers are often personal data). Off, the data plane
pays one ``is None`` test per call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, StatusCode

TRACER_NAME = "adaptive_engine.llm"


class LlmTracer:
    def __init__(self, capture_content: bool = False, provider: trace.TracerProvider | None = None) -> None:
        self.capture_content = capture_content
        self._provider = provider

    def start(
        self,
        operation: str,
        model: str,
        provider: str,
        *,
        params: Any = None,
        messages: Sequence[dict[str, Any]] | None = None,
        use_case: str | None = None,
    ) -> Span:
        """A started span for one call (``operation``: chat, text_completion or embeddings), current
        context as parent. The tracer is looked up per call: the provider may be set after the app is built."""
        tracer = (self._provider or trace.get_tracer_provider()).get_tracer(TRACER_NAME)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": operation,
            "gen_ai.provider.name": provider,
            "gen_ai.request.model": model,
        }
        if use_case is not None:
            attributes["adaptive.use_case"] = use_case
        if params is not None:
            if params.max_tokens is not None:
                attributes["gen_ai.request.max_tokens"] = params.max_tokens
            attributes["gen_ai.request.temperature"] = params.temperature
            attributes["gen_ai.request.top_p"] = params.top_p
            if params.n != 1:
                attributes["gen_ai.request.choice.count"] = params.n
            if params.seed is not None:
                attributes["gen_ai.request.seed"] = params.seed
            if params.stop:
                attributes["gen_ai.request.stop_sequences"] = list(params.stop)
        if self.capture_content and messages is not None:
            attributes["gen_ai.input.messages"] = json.dumps(list(messages), default=str)
        return tracer.start_span(f"{operation} {model}", kind=SpanKind.CLIENT, attributes=attributes)

    def finish(
        self,
        span: Span,
        *,
        response_model: str,
        response_id: str | None = None,
        input_tokens: int | None = None,
        output_tokens: int | None = None,
        finish_reasons: Sequence[str | None] = (),
        outputs: Sequence[str] | None = None,
        streamed: bool = False,
    ) -> None:
        span.set_attribute("gen_ai.response.model", response_model)
        if response_id is not None:
            span.set_attribute("gen_ai.response.id", response_id)
        if input_tokens is not None:
            span.set_attribute("gen_ai.usage.input_tokens", input_tokens)
        if output_tokens is not None:
            span.set_attribute("gen_ai.usage.output_tokens", output_tokens)
        if finish_reasons:
            span.set_attribute("gen_ai.response.finish_reasons", [r or "unknown" for r in finish_reasons])
        if streamed:
            span.set_attribute("adaptive.stream", True)
        if self.capture_content and outputs is not None:
            span.set_attribute(
                "gen_ai.output.messages",
                json.dumps(
                    [
                        {"role": "assistant", "content": text, "finish_reason": reason}
                        for text, reason in zip(outputs, list(finish_reasons) or [None] * len(outputs), strict=False)
                    ]
                ),
            )
        span.end()

    @staticmethod
    def fail(span: Span, error: BaseException, kind: str) -> None:
        span.set_attribute("error.type", kind)
        span.record_exception(error)
        span.set_status(StatusCode.ERROR, str(error)[:500])
        span.end()
