"""REST: POST /api/v1/chat/completions, /completions and /embeddings (OpenAI-compatible).

Answers carry both the official client's fields (``session_id``, ``completion_id`` and ``model`` on each
choice, ``id`` on messages and deltas) and the ``openai`` client's (``object``, ``model``); each ignores
the other's. Streams are server-sent events ending with ``data: [DONE]``; the first event is produced
before the answer starts, so a failing backend still gets a plain JSON error with its status.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.guard import route_requires
from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.domains.inference import catalog, openai_fields, responses, service
from adaptive_engine.server.domains.inference.names import Named, resolve_name
from adaptive_engine.server.domains.inference.schemas import ChatBody, CompletionBody, EmbeddingBody, ResponsesBody
from adaptive_engine.server.errors import DomainError, Internal, InvalidInput, openai_envelope
from adaptive_engine.server.inference.backends.base import TextDelta, Usage
from adaptive_engine.server.rest.deps import db_session, principal
from adaptive_engine.server.rest.errors import describe_validation_errors
from adaptive_engine.server.rest.json_input import CheckedRoute, read_json
from adaptive_engine.server.rest.openapi import json_body

router = APIRouter(tags=["inference"], route_class=CheckedRoute)
log = logging.getLogger(__name__)


async def _body(request: Request, schema: type[Any]) -> Any:
    """The JSON body (rest.json_input; a JSON string holding the object, as the official client sends
    embeddings, works too) and its view validated by ``schema``."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    try:
        return data, schema.model_validate(data)
    except ValidationError as exc:
        raise InvalidInput(describe_validation_errors(exc.errors())) from None


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def _error_event(error: Exception) -> str:
    domain = error if isinstance(error, DomainError) else Internal("generation failed")
    return _sse(openai_envelope(domain))


async def _named_use_case(body: Any, request: Request, session: AsyncSession) -> Any:
    """The guard's target: the use case that ``model`` names for this caller (rule in names.py). The
    resolved name is kept on the request, so the route does not resolve it twice."""
    if not isinstance(body, dict) or body.get("model") is None:
        return None
    named = await resolve_name(session, request.state.principal, request.app.state.refs, body["model"])
    request.state.named_model = named
    return named.use_case.id


def _named(request: Request) -> Named | None:
    return getattr(request.state, "named_model", None)


INFERENCE = route_requires("inference:run", use_case=_named_use_case)


# --------------------------------------------------------------------------- models


# Any caller: the list holds only what the caller may use, and retrieving a name checks inference:run on it.
@router.get("/models", response_model=None, dependencies=[route_requires(None)])
async def list_models(
    session: AsyncSession = Depends(db_session), caller: Principal = Depends(principal)
) -> JSONResponse:
    return JSONResponse({"object": "list", "data": await catalog.list_models(session, caller)})


@router.get("/models/{name:path}", response_model=None, dependencies=[route_requires(None)])
async def get_model(
    name: str, request: Request, session: AsyncSession = Depends(db_session), caller: Principal = Depends(principal)
) -> JSONResponse:
    return JSONResponse(await catalog.get_model(session, caller, request.app.state.refs, name))


# --------------------------------------------------------------------------- chat


@router.post("/chat/completions", response_model=None, dependencies=[INFERENCE])
@json_body(ChatBody)
async def chat_completions(
    request: Request, session: AsyncSession = Depends(db_session), caller: Principal = Depends(principal)
) -> JSONResponse | StreamingResponse:
    raw, body = await _body(request, ChatBody)
    call = await service.prepare_call(session, caller, request.app.state, body, raw, prompt=None, named=_named(request))
    if body.stream:
        return await _stream_response(request, call, chat=True)
    result = await service.run(call)
    tool_calls = [(c.message or {}).get("tool_calls") for c in result.choices]
    await service.record(
        request.app.state,
        call,
        [c.text for c in result.choices],
        [c.finish_reason for c in result.choices],
        result.usage,
        tool_calls,
    )
    choices = []
    for c in result.choices:
        completion_id = str(call.completion_ids[c.index])
        # A provider's message goes back as it came (tool_calls, refusal, annotations...), with our id on it.
        message = {"role": "assistant", "content": c.text} if c.message is None else {"role": "assistant", **c.message}
        choice = {
            "index": c.index,
            "message": {**message, "id": completion_id},
            "finish_reason": c.finish_reason,
            "completion_id": completion_id,
            "model": call.target.model_key,
        }
        if c.logprobs is not None:
            choice["logprobs"] = c.logprobs
        choices.append(choice)
    return JSONResponse(
        {
            "id": str(call.request_id),
            "object": "chat.completion",
            "created": call.created,
            "model": call.target.label,
            "session_id": str(call.session_id),
            "choices": choices,
            "usage": service.usage_json(result.usage),
            **result.extra,
        }
    )


# --------------------------------------------------------------------------- completions


@router.post("/completions", response_model=None, dependencies=[INFERENCE])
@json_body(CompletionBody)
async def completions(
    request: Request, session: AsyncSession = Depends(db_session), caller: Principal = Depends(principal)
) -> JSONResponse | StreamingResponse:
    raw, body = await _body(request, CompletionBody)
    prompt = body.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise InvalidInput("prompt must be one string (a list of several prompts is not supported)")
        prompt = prompt[0]
    if not prompt:
        raise InvalidInput("prompt must not be empty")
    call = await service.prepare_call(
        session, caller, request.app.state, body, raw, prompt=prompt, named=_named(request)
    )
    if body.stream:
        return await _stream_response(request, call, chat=False)
    result = await service.run(call)
    await service.record(
        request.app.state,
        call,
        [c.text for c in result.choices],
        [c.finish_reason for c in result.choices],
        result.usage,
    )
    return JSONResponse(
        {
            "id": str(call.request_id),
            "object": "text_completion",
            "created": call.created,
            "model": call.target.label,
            "session_id": str(call.session_id),
            "choices": [
                {
                    "index": c.index,
                    "text": c.text,
                    "finish_reason": c.finish_reason,
                    "logprobs": c.logprobs,
                    "completion_id": str(call.completion_ids[c.index]),
                    "model": call.target.model_key,
                }
                for c in result.choices
            ],
            "usage": service.usage_json(result.usage),
            **result.extra,
        }
    )


# --------------------------------------------------------------------------- streaming


async def _stream_response(request: Request, call: service.Call, *, chat: bool) -> StreamingResponse:
    events = service.stream(call)
    try:
        first = await anext(events)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await events.aclose()
        raise
    head = {
        "id": str(call.request_id),
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": call.created,
        "model": call.target.label,
        "session_id": str(call.session_id),
    }
    n = call.request.params.n
    texts = [""] * n
    reasons: list[str | None] = [None] * n
    calls: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    state = request.app.state

    def chunk(delta: TextDelta) -> str:
        completion_id = str(call.completion_ids[delta.index])
        if chat:
            # A provider's delta goes as it came (tool-call pieces...), with our id and the role on each, and
            # text content on each that is no tool call (the official client reads them on every chunk).
            piece = {"content": delta.text} if delta.delta is None else dict(delta.delta)
            if piece.get("content") is None and not piece.get("tool_calls"):
                piece["content"] = delta.text
            choice = {
                "index": delta.index,
                "delta": {"role": "assistant", **piece, "id": completion_id},
                "completion_id": completion_id,
                "finish_reason": delta.finish_reason,
            }
            if delta.logprobs is not None:
                choice["logprobs"] = delta.logprobs
        else:
            choice = {
                "index": delta.index,
                "text": delta.text,
                "completion_id": completion_id,
                "model": call.target.model_key,
                "finish_reason": delta.finish_reason,
                "logprobs": delta.logprobs,
            }
        return _sse({**head, "choices": [choice]})

    async def body() -> AsyncIterator[str]:
        usage = Usage()
        try:
            pending = [first] if first is not None else []
            while True:
                if pending:
                    event = pending.pop()
                else:
                    try:
                        event = await anext(events)
                    except StopAsyncIteration:
                        break
                if isinstance(event, Usage):
                    usage = event
                    continue
                texts[event.index] += event.text
                if event.finish_reason is not None:
                    reasons[event.index] = event.finish_reason
                if event.delta is not None and event.delta.get("tool_calls"):
                    openai_fields.merge_tool_call_deltas(calls[event.index], event.delta["tool_calls"])
                yield chunk(event)
            await service.record(state, call, texts, reasons, usage, [c or None for c in calls])
            if call.include_usage:
                yield _sse({**head, "choices": [], "usage": service.usage_json(usage)})
            yield "data: [DONE]\n\n"
        except DomainError as error:  # the answer has started: report in the stream, then end it
            yield _error_event(error)
            yield "data: [DONE]\n\n"
        except Exception:  # a bug must end the stream too, never leave the caller waiting
            log.exception("a stream failed")
            yield _error_event(Internal("generation failed"))
            yield "data: [DONE]\n\n"
        finally:
            await events.aclose()  # on a client disconnect this cancels the generation

    return StreamingResponse(
        body(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


# --------------------------------------------------------------------------- responses


@router.post("/responses", response_model=None, dependencies=[INFERENCE])
@json_body(ResponsesBody)
async def create_response(
    request: Request, session: AsyncSession = Depends(db_session), caller: Principal = Depends(principal)
) -> JSONResponse | StreamingResponse:
    raw, _ = await _body(request, ResponsesBody)
    chat_raw = responses.to_chat(raw)
    try:
        body = ChatBody.model_validate(chat_raw)
    except ValidationError as exc:
        raise InvalidInput(describe_validation_errors(exc.errors())) from None
    call = await service.prepare_call(
        session, caller, request.app.state, body, chat_raw, prompt=None, named=_named(request)
    )
    state = request.app.state

    async def record(texts: list[str], reasons: list[str | None], usage: Usage, calls: list[Any]) -> None:
        await service.record(state, call, texts, reasons, usage, calls)

    if not body.stream:
        result = await service.run(call)
        choice = result.choices[0]
        await record([choice.text], [choice.finish_reason], result.usage, [(choice.message or {}).get("tool_calls")])
        return JSONResponse(responses.answer(call, raw, result))
    events = service.stream(call)
    try:
        first = await anext(events)
    except StopAsyncIteration:
        first = None
    except BaseException:
        await events.aclose()
        raise
    return StreamingResponse(
        responses.stream(call, raw, events, first, record, openai_envelope),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


# --------------------------------------------------------------------------- embeddings


@router.post("/embeddings", response_model=None, dependencies=[INFERENCE])
@json_body(EmbeddingBody)
async def embeddings(
    request: Request, session: AsyncSession = Depends(db_session), caller: Principal = Depends(principal)
) -> JSONResponse:
    raw, body = await _body(request, EmbeddingBody)
    unknown = sorted(k for k, v in raw.items() if v is not None and k not in EmbeddingBody.model_fields)
    if unknown:  # nothing is silently dropped: embeddings take only their documented fields
        raise InvalidInput(f"'{unknown[0]}' is not supported on /embeddings", details={"param": unknown[0]})
    fmt = service.encoding_format(body.encoding_format)
    answer = await service.embed(session, caller, request.app.state, body, named=_named(request))
    tokens = answer.usage.prompt_tokens
    return JSONResponse(
        {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": service.encode_vector(v, fmt)}
                for i, v in enumerate(answer.vectors)
            ],
            "model": answer.target.label,
            "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
        }
    )
