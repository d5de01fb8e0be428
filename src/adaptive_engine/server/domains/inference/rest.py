"""REST: POST /api/v1/chat/completions, /completions and /embeddings (OpenAI-compatible).

Answers carry both the official client's fields (``session_id``, ``completion_id`` and ``model`` on each
choice, ``id`` on messages and deltas) and the ``openai`` client's (``object``, ``model``); each ignores
the other's. Streams are server-sent events ending with ``data: [DONE]``; the first event is produced
before the answer starts, so a failing backend still gets a plain JSON error with its status.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.guard import from_body, route_requires
from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.domains.inference import service
from adaptive_engine.server.domains.inference.schemas import ChatBody, CompletionBody, EmbeddingBody
from adaptive_engine.server.errors import DomainError, Internal, InvalidInput, openai_envelope
from adaptive_engine.server.inference.backends.base import TextDelta, Usage
from adaptive_engine.server.rest.deps import db_session, principal
from adaptive_engine.server.rest.json_input import CheckedRoute, read_json
from adaptive_engine.server.rest.openapi import json_body

router = APIRouter(tags=["inference"], route_class=CheckedRoute)


async def _body(request: Request, schema: type[Any]) -> Any:
    """The JSON body (rest.json_input; a JSON string holding the object, as the official client sends
    embeddings, works too), validated by ``schema``."""
    data = await read_json(request)
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()))
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        raise InvalidInput("; ".join(parts)) from exc


def _sse(payload: dict[str, Any]) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


def _error_event(error: Exception) -> str:
    domain = error if isinstance(error, DomainError) else Internal("generation failed")
    return _sse(openai_envelope(domain))


# The use case is the first part of "model" ("<use_case>" or "<use_case>/<model>").
INFERENCE = route_requires("inference:run", use_case=from_body("model"))


# --------------------------------------------------------------------------- chat


@router.post("/chat/completions", response_model=None, dependencies=[INFERENCE])
@json_body(ChatBody)
async def chat_completions(
    request: Request, session: AsyncSession = Depends(db_session), caller: Principal = Depends(principal)
) -> JSONResponse | StreamingResponse:
    body: ChatBody = await _body(request, ChatBody)
    messages = service.check_messages(body.messages)
    call = await service.prepare_call(session, caller, request.app.state, body, messages=messages, prompt=None)
    if body.stream:
        return await _stream_response(request, call, chat=True)
    result = await service.run(call)
    texts = [c.text for c in result.choices]
    reasons = [c.finish_reason for c in result.choices]
    await service.record(request.app.state, call, texts, reasons, result.usage)
    choices = [
        {
            "index": c.index,
            "message": {"id": str(call.completion_ids[c.index]), "role": "assistant", "content": c.text},
            "finish_reason": c.finish_reason,
            "completion_id": str(call.completion_ids[c.index]),
            "model": call.target.model_key,
        }
        for c in result.choices
    ]
    return JSONResponse({
        "id": str(call.request_id),
        "object": "chat.completion",
        "created": call.created,
        "model": call.target.label,
        "session_id": str(call.session_id),
        "choices": choices,
        "usage": service.usage_json(result.usage),
    })


# --------------------------------------------------------------------------- completions


@router.post("/completions", response_model=None, dependencies=[INFERENCE])
@json_body(CompletionBody)
async def completions(
    request: Request, session: AsyncSession = Depends(db_session), caller: Principal = Depends(principal)
) -> JSONResponse | StreamingResponse:
    body: CompletionBody = await _body(request, CompletionBody)
    prompt = body.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise InvalidInput("prompt must be one string (a list of several prompts is not supported)")
        prompt = prompt[0]
    if not prompt:
        raise InvalidInput("prompt must not be empty")
    call = await service.prepare_call(session, caller, request.app.state, body, messages=None, prompt=prompt)
    if body.stream:
        return await _stream_response(request, call, chat=False)
    result = await service.run(call)
    await service.record(request.app.state, call, [c.text for c in result.choices],
                         [c.finish_reason for c in result.choices], result.usage)
    return JSONResponse({
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
                "logprobs": None,
                "completion_id": str(call.completion_ids[c.index]),
                "model": call.target.model_key,
            }
            for c in result.choices
        ],
        "usage": service.usage_json(result.usage),
    })


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
    head = {"id": str(call.request_id), "object": "chat.completion.chunk" if chat else "text_completion",
            "created": call.created, "model": call.target.label, "session_id": str(call.session_id)}
    n = call.request.params.n
    texts = [""] * n
    reasons: list[str | None] = [None] * n
    state = request.app.state

    def chunk(delta: TextDelta) -> str:
        completion_id = str(call.completion_ids[delta.index])
        if chat:
            choice = {"index": delta.index,
                      "delta": {"id": completion_id, "role": "assistant", "content": delta.text},
                      "completion_id": completion_id, "finish_reason": delta.finish_reason}
        else:
            choice = {"index": delta.index, "text": delta.text, "completion_id": completion_id,
                      "model": call.target.model_key, "finish_reason": delta.finish_reason, "logprobs": None}
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
                yield chunk(event)
            await service.record(state, call, texts, reasons, usage)
            if call.include_usage:
                yield _sse({**head, "choices": [], "usage": service.usage_json(usage)})
            yield "data: [DONE]\n\n"
        except DomainError as error:  # the answer has started: report in the stream, then end it
            yield _error_event(error)
            yield "data: [DONE]\n\n"
        finally:
            await events.aclose()  # on a client disconnect this cancels the generation

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})


# --------------------------------------------------------------------------- embeddings


@router.post("/embeddings", response_model=None, dependencies=[INFERENCE])
@json_body(EmbeddingBody)
async def embeddings(
    request: Request, session: AsyncSession = Depends(db_session), caller: Principal = Depends(principal)
) -> JSONResponse:
    body: EmbeddingBody = await _body(request, EmbeddingBody)
    fmt = service.encoding_format(body.encoding_format)
    answer = await service.embed(session, caller, request.app.state, body)
    tokens = answer.usage.prompt_tokens
    return JSONResponse({
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": service.encode_vector(v, fmt)}
                 for i, v in enumerate(answer.vectors)],
        "model": answer.target.label,
        "usage": {"prompt_tokens": tokens, "completion_tokens": 0, "total_tokens": tokens},
    })
