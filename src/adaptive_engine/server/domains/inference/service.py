"""Inference: chat, completions and embeddings on a use case's models.

Every input is checked before any backend work. The target is ``"{use_case}"`` (its default model, or
an A/B campaign's arm) or ``"{use_case}/{model}"``. Each served choice becomes a completion row (unless
``store`` is false), written through the group-commit ingest path once the answer is complete.
"""

from __future__ import annotations

import base64
import logging
import struct
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.base import new_id
from adaptive_engine.server.db.lookup import parse_uuid
from adaptive_engine.server.db.refs import Attachment, Ref
from adaptive_engine.server.domains.inference import openai_fields
from adaptive_engine.server.domains.inference.names import Named, resolve_name
from adaptive_engine.server.domains.interactions.service import (
    NewCompletion,
    record_completions,
    record_failure,
    record_unstored,
)
from adaptive_engine.server.domains.models import prompt_templates
from adaptive_engine.server.domains.usage.limits import Admission
from adaptive_engine.server.domains.usage.prices import Prices, cached_tokens
from adaptive_engine.server.domains.use_cases.service import refuse_archived
from adaptive_engine.server.errors import DomainError, InvalidInput, NotFound, Unavailable
from adaptive_engine.server.inference.backends.base import (
    Backend,
    ChatMessage,
    GenerationParams,
    GenerationRequest,
    GenerationResult,
    StreamEvent,
    TextDelta,
    UpstreamError,
    UpstreamTimeout,
    Usage,
    failure_kind,
)
from adaptive_engine.server.observability.metrics import Metrics
from adaptive_engine.server.observability.tracing import LlmTracer

if TYPE_CHECKING:
    from adaptive_engine.server.platform import Platform

log = logging.getLogger(__name__)

MAX_N = 16
MAX_STOP = 16
MAX_EMBEDDING_INPUTS = 2048
# The longest caller-given user id kept with a request (the completions' user_ref column).
MAX_USER = 200


@dataclass(frozen=True)
class Target:
    """Who serves a request, as plain values (valid after the request's session is closed)."""

    use_case_id: uuid.UUID
    use_case_key: str
    model_id: uuid.UUID
    model_key: str
    ab_campaign_id: uuid.UUID | None
    gateway: str | None = None  # the model's gateway settings when the registry was read (db/refs.py)
    # The model service's system prompt template (applied to chat requests without a system message).
    system_prompt_template_id: uuid.UUID | None = None
    prices: tuple[float, float, float] = (0.0, 0.0, 0.0)  # input, output, cached input ($ per million tokens)

    @property
    def label(self) -> str:
        return f"{self.use_case_key}/{self.model_key}"


@dataclass
class Call:
    """A validated generation call: what to run, where, and what to record."""

    # What the call is served with: its limits, metrics, tracer, and the ingest writer that records it.
    platform: Platform
    target: Target
    backend: Backend
    request: GenerationRequest
    stored_messages: list[dict[str, Any]]
    session_id: uuid.UUID
    labels: dict[str, str]
    store: bool
    include_usage: bool
    # Who serves when the target fails before answering (the model's gateway fallbacks), in order.
    fallbacks: list[Route] = field(default_factory=list)
    request_id: uuid.UUID = field(default_factory=new_id)
    # The template whose text was added as the system message (stored on the completions).
    system_prompt_template_id: uuid.UUID | None = None
    created: int = field(default_factory=lambda: int(time.time()))
    started: float = field(default_factory=time.perf_counter)
    completion_ids: list[uuid.UUID] = field(default_factory=list)
    # Who called (the usage roll-ups' key and user), and what the call took of their limits.
    api_key_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    admission: Admission | None = None

    @property
    def metrics(self) -> Metrics:
        return self.platform.metrics

    @property
    def tracer(self) -> LlmTracer | None:
        return self.platform.llm_tracer

    def __post_init__(self) -> None:
        self.completion_ids = [new_id() for _ in range(self.request.params.n)]

    def routes(self) -> list[Route]:
        return [Route(self.target, self.backend, self.request), *self.fallbacks]

    def served_by(self, route: Route) -> None:
        """The route that answered: the answer and the completion name its model."""
        self.target, self.backend, self.request = route.target, route.backend, route.request


@dataclass(frozen=True)
class Route:
    target: Target
    backend: Backend
    request: GenerationRequest


# --------------------------------------------------------------------------- validation


def check_params(body: Any) -> GenerationParams:
    max_tokens = body.max_tokens if body.max_tokens is not None else body.max_completion_tokens
    if max_tokens is not None and max_tokens < 1:
        raise InvalidInput(f"max_tokens must be at least 1 (got {max_tokens})")
    temperature = 1.0 if body.temperature is None else body.temperature
    if not 0.0 <= temperature <= 2.0:
        raise InvalidInput(f"temperature must be between 0 and 2 (got {temperature})")
    top_p = 1.0 if body.top_p is None else body.top_p
    if not 0.0 < top_p <= 1.0:
        raise InvalidInput(f"top_p must be in (0, 1] (got {top_p})")
    n = 1 if body.n is None else body.n
    if not 1 <= n <= MAX_N:
        raise InvalidInput(f"n must be between 1 and {MAX_N} (got {n})")
    stop = list(body.stop or [])
    if len(stop) > MAX_STOP or any(not isinstance(s, str) or not s for s in stop):
        raise InvalidInput(f"stop must be at most {MAX_STOP} non-empty strings")
    return GenerationParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p, stop=stop, n=n, seed=body.seed)


def check_user(value: str | None) -> None:
    """The caller-given user id is stored (completions.user_ref) or logged: bounded like the column."""
    if value is not None and len(value) > MAX_USER:
        raise InvalidInput(f"user must be at most {MAX_USER} characters", details={"param": "user"})


def check_session_id(value: str | None) -> uuid.UUID:
    if value is None:
        return new_id()
    parsed = parse_uuid(value)
    if parsed is None:
        raise InvalidInput(f"session_id must be a UUID (got '{value}')")
    return parsed


def check_labels(labels: dict[str, Any] | None) -> dict[str, str]:
    labels = labels or {}
    for key, value in labels.items():
        if not isinstance(value, str):
            raise InvalidInput(f"labels.{key}: label values must be strings")
    return dict(labels)


# --------------------------------------------------------------------------- routing


async def resolve_target(
    session: AsyncSession,
    principal: Principal,
    platform: Platform,
    model_path: str,
    *,
    kind: str,
    session_id: uuid.UUID | None = None,
    ab_campaign: str | None = None,
    named: Named | None = None,
) -> Target:
    """Who serves ``model_path`` (named by the rule of :mod:`.names`; ``named``: already resolved by the
    route's guard). Reads the registry through ``platform.refs``: a steady stream of requests costs no query."""
    refs = platform.refs
    if named is None:
        named = await resolve_name(session, principal, refs, model_path)
    use_case, explicit = named.use_case, named.model
    refuse_archived(use_case)
    route = None
    if kind == "chat":
        route = await platform.ab_router.route(
            session,
            use_case.id,
            model_id=explicit.id if explicit else None,
            session_id=session_id,
            ab_campaign=ab_campaign,
        )
    attached = await refs.attachments(session, use_case.id)
    if route is not None:
        model = await refs.model(session, route.model_id)
        if model is None:
            raise NotFound(f"model of A/B test '{route.campaign_key}' not found")
    elif explicit is not None:
        model = explicit
    else:
        model = _default_model(use_case, attached, kind)
    service = next((a for a in attached if a.model.id == model.id), None)
    if service is None:
        raise NotFound(f"model '{model.key}' is not attached to use case '{use_case.key}'")
    if model.kind != kind:
        raise InvalidInput(f"model '{model.key}' is a {model.kind} model; this endpoint needs a {kind} model")
    if not service.desired_online:
        raise Unavailable(f"model '{model.key}' is not deployed in use case '{use_case.key}' (deploy it first)")
    if model.status != "ONLINE":
        reason = f": {model.error}" if model.status == "ERROR" and model.error else ""
        raise Unavailable(
            f"model '{model.key}' of use case '{use_case.key}' is not online (status {model.status}{reason})"
        )
    return Target(
        use_case.id,
        use_case.key,
        model.id,
        model.key,
        route.campaign_id if route else None,
        model.gateway,
        service.system_prompt_template_id,
        model.prices,
    )


def _default_model(use_case: Ref, attached: Sequence[Attachment], kind: str) -> Ref:
    default = next((a for a in attached if a.is_default), None)
    if default is not None and default.model.kind == kind:
        return default.model
    if kind == "embedding":
        embedders = [a.model for a in attached if a.model.kind == "embedding"]
        if len(embedders) == 1:
            return embedders[0]
        if embedders:
            raise InvalidInput(
                f"use case '{use_case.key}' has several embedding models: name one as '<use_case>/<model>'"
            )
        raise NotFound(f"use case '{use_case.key}' has no embedding model attached")
    raise NotFound(f"use case '{use_case.key}' has no default model: name one as '<use_case>/<model>'")


async def backend_of(session: AsyncSession, platform: Platform, target: Target) -> Backend:
    manager = platform.inference
    loaded = manager.loaded(target.model_id)
    if loaded is not None and loaded.gateway == target.gateway:
        return loaded
    model = await session.get(orm.Model, target.model_id)
    if model is None:
        raise NotFound(f"model '{target.model_key}' not found")
    if loaded is not None:  # its gateway settings changed (in another process): applied here too
        await manager.reconfigure(model)
        loaded = manager.loaded(target.model_id)
        if loaded is not None:
            return loaded
    return await manager.backend_for(model)


# --------------------------------------------------------------------------- chat and completions


def one_prompt(prompt: str | list[str]) -> str:
    """The one prompt of a /completions request (OpenAI's list form is accepted with one element)."""
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise InvalidInput("prompt must be one string (a list of several prompts is not supported)")
        prompt = prompt[0]
    if not prompt:
        raise InvalidInput("prompt must not be empty")
    return prompt


async def prepare_call(
    session: AsyncSession,
    principal: Principal,
    platform: Platform,
    body: Any,
    raw: dict[str, Any],
    *,
    prompt: str | None,
    named: Named | None = None,
) -> Call:
    """Validate everything, find the target and its backend. Nothing runs yet. ``raw`` is the request's JSON
    (``body`` its typed view); ``prompt`` is set for /completions, None for chat."""
    params = check_params(body)
    check_user(body.user)
    session_id = check_session_id(body.session_id)
    # metadata (OpenAI's key-value pairs) is kept with the completion as labels; explicit labels win.
    labels = {**openai_fields.check_metadata(raw.get("metadata")), **check_labels(body.labels)}
    messages = openai_fields.check_messages(raw.get("messages")) if prompt is None else None
    openai_fields.check(raw)
    target = await resolve_target(
        session,
        principal,
        platform,
        body.model,
        kind="chat",
        session_id=session_id,
        ab_campaign=body.ab_campaign,
        named=named,
    )
    template_id = None
    if (
        messages is not None
        and target.system_prompt_template_id is not None
        and not any(m.get("role") in ("system", "developer") for m in messages)
    ):
        system = await prompt_templates.for_request(session, target.system_prompt_template_id, labels)
        if system:
            template_id = target.system_prompt_template_id
            messages = [{"role": "system", "content": system}, *messages]
            raw = {**raw, "messages": [{"role": "system", "content": system}, *raw["messages"]]}
    backend = await backend_of(session, platform, target)

    def request_for(backend: Backend, model_key: str) -> GenerationRequest:
        upstream = None
        local_params = params
        if backend.passthrough:
            upstream = openai_fields.upstream_body(raw)
        else:
            openai_fields.refuse_for_local(
                raw,
                model_key,
                structured=backend.structured_output,
                template_takes_tools=bool(getattr(backend, "template_takes_tools", False)),
            )
            local_params = replace(params, logprobs=openai_fields.local_logprobs(raw))
            tool_use = openai_fields.local_tool_use(raw)
            schema, shaped_by = openai_fields.output_schema(raw), "response_format"
            if tool_use is not None and tool_use.forced:
                if schema is not None:
                    raise InvalidInput(
                        f"local model '{model_key}' cannot follow response_format and a forced tool "
                        f"call at once; drop one",
                        details={"param": "response_format"},
                    )
                schema, shaped_by = tool_use.call_schema(), "tools"
            if schema is not None:  # enforced by constrained decoding
                from adaptive_engine.server.inference.grammar import json_grammar  # the local extra's

                try:
                    local_params = replace(local_params, grammar=json_grammar(schema))
                except ValueError as exc:
                    raise InvalidInput(
                        f"{shaped_by}: this schema cannot be enforced on local model '{model_key}': {exc}",
                        details={"param": shaped_by},
                    ) from None
        if messages is not None:
            chat = [
                ChatMessage(
                    m["role"],
                    openai_fields.text_of(m.get("content")),
                    tool_calls=m.get("tool_calls"),
                    tool_call_id=m.get("tool_call_id"),
                )
                for m in messages
            ]
            return GenerationRequest(
                messages=chat,
                params=local_params,
                user=body.user,
                upstream=upstream,
                tool_use=None if backend.passthrough else openai_fields.local_tool_use(raw),
            )
        return GenerationRequest(prompt=prompt, params=local_params, user=body.user, upstream=upstream)

    request = request_for(backend, target.model_key)
    fallbacks = await _fallbacks(session, platform, target, backend, request_for)
    stored: list[dict[str, Any]] = messages if messages is not None else [{"role": "user", "content": prompt or ""}]
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    # The request's read transaction ends here: generation may take long and must not hold a connection.
    await session.rollback()
    admission = await admit(platform, principal, target)
    return Call(
        target=target,
        backend=backend,
        request=request,
        stored_messages=stored,
        session_id=session_id,
        labels=labels,
        store=body.store is not False,
        include_usage=include_usage,
        fallbacks=fallbacks,
        platform=platform,
        system_prompt_template_id=template_id,
        api_key_id=principal.api_key_id,
        user_id=principal.user_id,
        admission=admission,
    )


async def admit(platform: Platform, principal: Principal, target: Target) -> Admission:
    """The key's scope and the limits of its key, user and use case (domains/usage/limits.py): last, so a
    request refused for any other reason takes nothing from them."""
    return await platform.limits.admit(principal, target.use_case_id, target.model_key)


async def release(call: Call) -> None:
    await call.platform.limits.release(call.admission)


async def _fallbacks(
    session: AsyncSession,
    platform: Platform,
    target: Target,
    backend: Backend,
    request_for: Callable[[Backend, str], GenerationRequest],
) -> list[Route]:
    """The routes of the primary's fallback models that can take this request now (online chat models; a
    local one only when the request holds nothing it refuses). Read from the registry cache."""
    routes = []
    for key in backend.fallbacks:
        model = await platform.refs.model(session, key)
        if model is None or model.kind != "chat" or model.id == target.model_id or model.status != "ONLINE":
            continue
        fallback = Target(
            target.use_case_id, target.use_case_key, model.id, model.key, None, model.gateway, prices=model.prices
        )
        try:
            other = await backend_of(session, platform, fallback)
            routes.append(Route(fallback, other, request_for(other, model.key)))
        except DomainError as skipped:
            log.info("fallback %s of %s cannot serve this request: %s", key, target.model_key, skipped.message)
    return routes


def _fails_over(error: DomainError) -> bool:
    """Whether another model may serve after ``error``: the upstream could not be reached, was overloaded,
    failed (5xx) or timed out, or the model is not serving; never a refusal of the request itself (4xx)."""
    if isinstance(error, UpstreamError):
        return error.retryable or error.status is None or isinstance(error, UpstreamTimeout)
    return isinstance(error, Unavailable)


# A model whose calls failed this many times in a row is skipped for this long while a fallback can serve
# (then tried again: one success ends the cool-down). A few lines kept here rather than a circuit-breaker
# library: the state is two fields on the backend, and the fallback loop is the only reader.
COOL_DOWN_FAILURES = 5
COOL_DOWN_S = 30.0


def _live(routes: list[Route]) -> list[Route]:
    """The routes to try, in order: those not cooling down; all of them when every one is."""
    now = time.monotonic()
    live = [r for r in routes if r.backend.cool_until <= now]
    return live or routes


def _failed(call: Call, route: Route, error: DomainError, routes: list[Route], i: int) -> bool:
    """Count a failure; whether the next route takes over."""
    metrics = call.metrics
    metrics.upstream_errors(route.target.model_key, failure_kind(error)).inc()
    if not _fails_over(error):
        return False
    backend = route.backend
    backend.failures += 1
    if backend.failures >= COOL_DOWN_FAILURES and backend.fallbacks:
        backend.cool_until = time.monotonic() + COOL_DOWN_S
        log.warning(
            "model %s failed %d times in a row: skipped for %g s", route.target.model_key, backend.failures, COOL_DOWN_S
        )
    if i + 1 == len(routes):
        return False
    log.warning(
        "model %s failed (%s); %s serves instead", route.target.model_key, error.message, routes[i + 1].target.model_key
    )
    metrics.fallbacks(route.target.model_key, routes[i + 1].target.model_key).inc()
    return True


def _served(call: Call, route: Route) -> None:
    route.backend.failures, route.backend.cool_until = 0, 0.0
    call.served_by(route)


async def complete(call: Call) -> GenerationResult:
    """Serve the call and record its answer (:func:`record`)."""
    result = await run(call)
    tool_calls = [(c.message or {}).get("tool_calls") for c in result.choices]
    await record(
        call, [c.text for c in result.choices], [c.finish_reason for c in result.choices], result.usage, tool_calls
    )
    return result


async def run(call: Call) -> GenerationResult:
    span = _start_span(call)
    try:
        result = await _run_routes(call)
    except Exception as error:
        _count_failure(call, error, span)
        raise
    except BaseException:  # cancelled (the client went away)
        _cancelled(span)
        raise
    finally:
        await release(call)
    reasons = [c.finish_reason for c in result.choices]
    _observe(call, result.usage, reasons, span, [c.text for c in result.choices])
    return result


async def _run_routes(call: Call) -> GenerationResult:
    routes = _live(call.routes())
    for i, route in enumerate(routes):
        try:
            result = await route.backend.generate(route.request)
        except DomainError as error:
            if _failed(call, route, error, routes, i):
                continue
            raise
        _served(call, route)
        return result
    raise AssertionError("no route")  # routes() is never empty


@dataclass
class Transcript:
    """What a stream served so far, choice by choice: recorded when it ends."""

    texts: list[str]
    reasons: list[str | None]
    # Each choice's tool calls, whole (folded from the stream's pieces).
    tool_calls: list[list[dict[str, Any]]]
    usage: Usage | None = None

    @classmethod
    def of(cls, n: int) -> Transcript:
        return cls([""] * n, [None] * n, [[] for _ in range(n)])

    def add(self, event: TextDelta) -> None:
        self.texts[event.index] += event.text
        if event.finish_reason is not None:
            self.reasons[event.index] = event.finish_reason
        if event.delta is not None and event.delta.get("tool_calls"):
            openai_fields.merge_tool_call_deltas(self.tool_calls[event.index], event.delta["tool_calls"])


class ServedStream:
    """A started stream (:func:`open_stream`): iterate it once for its events, the first of which was produced
    before the answer started; ``transcript`` holds what the events served so far. ``aclose`` cancels the
    generation (a client that went away)."""

    def __init__(
        self, transcript: Transcript, first: StreamEvent | None, events: AsyncGenerator[StreamEvent, None]
    ) -> None:
        self.transcript = transcript
        self._first = first
        self._events = events

    async def __aiter__(self) -> AsyncIterator[StreamEvent]:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
            async for event in self._events:
                yield event

    async def aclose(self) -> None:
        await self._events.aclose()


async def open_stream(call: Call) -> ServedStream:
    """Start serving the call as a stream and wait for its first event: a call that fails before it is refused
    as a whole (a plain error answer with its status), not inside a stream. The completion is recorded when
    the stream ends (not when it breaks off or its client goes away)."""
    transcript = Transcript.of(call.request.params.n)
    events = stream(call, transcript)
    try:
        first = await anext(events)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await events.aclose()
        raise
    return ServedStream(transcript, first, events)


async def stream(call: Call, transcript: Transcript) -> AsyncGenerator[StreamEvent, None]:
    """The served events, each added to ``transcript`` before it is yielded; once the stream ends, the call's
    metrics and span (time to the first event, the mean gap between the others: two clock reads per stream,
    nothing per token) and its record."""
    span = _start_span(call)
    first_at = 0.0
    events = 0
    try:
        async for event in _stream_routes(call):
            if isinstance(event, Usage):
                transcript.usage = event
            else:
                if not events:
                    first_at = time.perf_counter()
                events += 1
                transcript.add(event)
            yield event
    except Exception as error:  # not a client that went away (GeneratorExit / CancelledError)
        _count_failure(call, error, span)
        raise
    except BaseException:
        _cancelled(span)
        raise
    finally:
        await release(call)
    usage = transcript.usage or Usage()
    texts = transcript.texts if span is not None and call.tracer and call.tracer.capture_content else None
    _observe(call, usage, transcript.reasons, span, texts, first_at=first_at, events=events)
    await record(call, transcript.texts, transcript.reasons, usage, [c or None for c in transcript.tool_calls])


async def _stream_routes(call: Call) -> AsyncGenerator[StreamEvent, None]:
    """The first route that produces a first event serves the whole stream: once an event is out, the caller
    has it, and a failure after it ends the stream (rest.py reports it as the stream's last event)."""
    routes = _live(call.routes())
    for i, route in enumerate(routes):
        events = route.backend.stream(route.request)
        try:
            first = await anext(events)
        except StopAsyncIteration:
            return
        except DomainError as error:
            await events.aclose()
            if _failed(call, route, error, routes, i):
                continue
            raise
        except BaseException:
            await events.aclose()
            raise
        _served(call, route)
        try:
            yield first
            async for event in events:
                yield event
        finally:
            await events.aclose()
        return


def _count_failure(call: Call, error: Exception, span: Span | None = None) -> None:
    """A call no route could serve counts as an error in its use case's activity."""
    record_failure(
        call.platform,
        use_case_id=call.target.use_case_id,
        model_key=call.target.model_key,
        error=error,
        api_key_id=call.api_key_id,
        user_id=call.user_id,
    )
    kind = failure_kind(error)
    call.metrics.request_failure(call.target.model_key, call.target.use_case_key, kind).inc()
    if span is not None:
        LlmTracer.fail(span, error, kind)


def _cancelled(span: Span | None) -> None:
    if span is not None:
        span.set_attribute("adaptive.cancelled", True)
        span.end()


def _start_span(call: Call) -> Span | None:
    tracer = call.tracer
    if tracer is None:
        return None
    target, request = call.target, call.request
    return tracer.start(
        "chat" if request.messages is not None else "text_completion",
        target.model_key,
        provider_of(call.backend),
        params=request.params,
        messages=call.stored_messages,
        use_case=target.use_case_key,
    )


def _observe(
    call: Call,
    usage: Usage,
    reasons: Sequence[str | None],
    span: Span | None,
    texts: Sequence[str] | None,
    *,
    first_at: float | None = None,
    events: int = 0,
) -> None:
    """A served call's series (labelled by the model that served it) and its span's end."""
    metrics = call.metrics
    model, use_case = call.target.model_key, call.target.use_case_key
    now = time.perf_counter()
    metrics.prompt_tokens(model, use_case).inc(usage.prompt_tokens)
    metrics.generation_tokens(model, use_case).inc(usage.completion_tokens)
    for reason in set(reasons):
        metrics.request_success(model, use_case, reason or "unknown").inc()
    streamed = first_at is not None
    metrics.e2e_latency(model, use_case, "true" if streamed else "false").observe(now - call.started)
    if first_at:
        metrics.time_to_first_token(model, use_case).observe(first_at - call.started)
        if events > 1:
            metrics.inter_token_latency(model, use_case).observe((now - first_at) / (events - 1))
    if span is not None and call.tracer is not None:
        call.tracer.finish(
            span,
            response_model=call.target.model_key,
            response_id=str(call.request_id),
            input_tokens=usage.prompt_tokens,
            output_tokens=usage.completion_tokens,
            finish_reasons=reasons,
            outputs=texts,
            streamed=first_at is not None,
        )


# gen_ai.provider.name: the semantic conventions' names of the providers we call.
GENAI_PROVIDERS = {"openai": "openai", "azure": "azure.ai.openai", "google": "gcp.gemini", "anthropic": "anthropic"}


def provider_of(backend: Backend) -> str:
    """gen_ai.provider.name: the external provider, else where the model runs (vllm or local)."""
    provider = getattr(getattr(backend, "config", None), "provider", None)
    if provider in GENAI_PROVIDERS:
        return GENAI_PROVIDERS[provider]
    return "vllm" if backend.passthrough else "local"


async def record(
    call: Call,
    texts: Sequence[str],
    reasons: Sequence[str | None],
    usage: Usage,
    tool_calls: Sequence[list[dict[str, Any]] | None] | None = None,
) -> None:
    """Store one completion per choice (unless the caller said store=False). The answer does not wait for
    the commit: the rows are queued on the group-commit writer, which keeps their order (feedback logged
    on them commits after them) and makes reads of this process wait for them (``IngestWriter.barrier``).
    The call's tokens count against its tokens-per-minute limits either way."""
    cost = Prices(*call.target.prices).cost(usage.prompt_tokens, usage.completion_tokens, cached_tokens(usage.raw))
    await call.platform.limits.charge(call.admission, usage.prompt_tokens + usage.completion_tokens, cost)
    latency_ms = (time.perf_counter() - call.started) * 1000.0
    if not call.store:  # not stored, but counted in the roll-ups (and so in the budgets)
        record_unstored(
            call.platform,
            {
                "use_case_id": call.target.use_case_id,
                "model_key": call.target.model_key,
                "api_key_id": call.api_key_id,
                "user_id": call.user_id,
                "prompt_tokens": usage.prompt_tokens,
                "completion_tokens": usage.completion_tokens,
                "cost": cost,
                "latency_ms": latency_ms,
            },
        )
        return
    n = len(texts)
    rows = [
        NewCompletion(
            id=call.completion_ids[i],
            use_case_id=call.target.use_case_id,
            messages=call.stored_messages,
            completion=texts[i],
            model_id=call.target.model_id,
            model_key=call.target.model_key,
            session_id=call.session_id,
            user=call.request.user,
            labels=call.labels,
            request_id=call.request_id,
            prompt_tokens=usage.prompt_tokens,
            completion_tokens=usage.completion_tokens // n if n > 1 else usage.completion_tokens,
            latency_ms=latency_ms,
            finish_reason=reasons[i],
            ab_campaign_id=call.target.ab_campaign_id,
            tool_calls=tool_calls[i] if tool_calls else None,
            system_prompt_template_id=call.system_prompt_template_id,
            api_key_id=call.api_key_id,
            user_id=call.user_id,
            # The choices share the call's cost (their sum is the call's).
            cost=cost / n,
        )
        for i in range(n)
    ]
    await record_completions(call.platform, rows, wait=False)


def usage_json(usage: Usage) -> dict[str, Any]:
    """A provider's usage object as it came (token details included); ours for local models."""
    ours = {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
    }
    return {**usage.raw, **ours} if usage.raw else ours


# --------------------------------------------------------------------------- embeddings


@dataclass
class EmbeddingAnswer:
    target: Target
    vectors: list[list[float]]
    usage: Usage


async def embed(
    session: AsyncSession, principal: Principal, platform: Platform, body: Any, named: Named | None = None
) -> EmbeddingAnswer:
    inputs = [body.input] if isinstance(body.input, str) else list(body.input)
    if not inputs:
        raise InvalidInput("input must not be empty")
    if len(inputs) > MAX_EMBEDDING_INPUTS:
        raise InvalidInput(f"at most {MAX_EMBEDDING_INPUTS} inputs per request")
    for i, text in enumerate(inputs):
        if not isinstance(text, str) or not text:
            raise InvalidInput(f"input[{i}] must be a non-empty string")
    encoding_format(body.encoding_format)
    if body.dimensions is not None and body.dimensions < 1:
        raise InvalidInput("dimensions must be at least 1")
    check_user(body.user)
    session_id = check_session_id(body.session_id) if body.session_id is not None else None
    target = await resolve_target(session, principal, platform, body.model, kind="embedding", named=named)
    backend = await backend_of(session, platform, target)
    await session.rollback()
    tracer = platform.llm_tracer
    span = (
        tracer.start("embeddings", target.model_key, provider_of(backend), use_case=target.use_case_key)
        if tracer
        else None
    )
    admission = await admit(platform, principal, target)
    limiter = platform.limits
    started = time.perf_counter()
    try:
        result = await backend.embed(inputs)
    except Exception as error:
        if span is not None:
            LlmTracer.fail(span, error, failure_kind(error))
        raise
    finally:
        await limiter.release(admission)
    # Not stored as interactions, but counted in the roll-ups, at the model's input price (budgets read them).
    cost = Prices(*target.prices).cost(result.usage.prompt_tokens, 0)
    await limiter.charge(admission, result.usage.prompt_tokens, cost)
    latency_ms = (time.perf_counter() - started) * 1000.0
    platform.metrics.prompt_tokens(target.model_key, target.use_case_key).inc(result.usage.prompt_tokens)
    if span is not None and tracer is not None:
        tracer.finish(span, response_model=target.model_key, input_tokens=result.usage.prompt_tokens)
    # Embeddings are not stored as interactions: who asked (user, session) is logged with the request, as the
    # client's reference says.
    log.info(
        "embeddings served",
        extra={
            "use_case": target.use_case_key,
            "model": target.model_key,
            "inputs": len(inputs),
            "prompt_tokens": result.usage.prompt_tokens,
            "user": body.user,
            "session_id": str(session_id) if session_id else None,
        },
    )
    if body.dimensions is not None and result.vectors and body.dimensions != len(result.vectors[0]):
        raise InvalidInput(
            f"model '{target.model_key}' produces {len(result.vectors[0])} dimensions, not {body.dimensions}"
        )
    record_unstored(
        platform,
        {
            "use_case_id": target.use_case_id,
            "model_key": target.model_key,
            "api_key_id": principal.api_key_id,
            "user_id": principal.user_id,
            "prompt_tokens": result.usage.prompt_tokens,
            "completion_tokens": 0,
            "cost": cost,
            "latency_ms": latency_ms,
        },
    )
    return EmbeddingAnswer(target=target, vectors=result.vectors, usage=result.usage)


def encoding_format(value: str | None) -> str:
    fmt = (value or "float").lower()
    if fmt not in ("float", "base64"):
        raise InvalidInput(f"encoding_format must be Float or Base64 (got '{value}')")
    return fmt


def encode_vector(vector: Sequence[float], fmt: str) -> list[float] | str:
    if fmt == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return list(vector)
