"""REST: POST /api/v1/chat/completions, /completions and /embeddings (OpenAI-compatible).

Answers carry both the official client's fields (``session_id``, ``completion_id`` and ``model`` on each
choice, ``id`` on messages and deltas) and the ``openai`` client's (``object``, ``model``); each ignores
the other's. Streams are server-sent events ending with ``data: [DONE]``; the first event is produced
before the answer starts, so a failing backend still gets a plain JSON error with its status.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import pydantic_core
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.guard import Authorized, route_requires
from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.domains.inference import catalog, responses, service
from adaptive_engine.server.domains.inference.names import Named, resolve_name
from adaptive_engine.server.domains.inference.schemas import (
    Answer,
    ChatBody,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletionChunk,
    ChatCompletionResponse,
    CompletionBody,
    CompletionChoice,
    CompletionChunk,
    CompletionChunkChoice,
    CompletionResponse,
    Embedding,
    EmbeddingBody,
    EmbeddingResponse,
    EmbeddingUsage,
    ModelList,
    ResponsesBody,
)
from adaptive_engine.server.errors import DomainError, Internal, InvalidInput, openai_envelope
from adaptive_engine.server.inference.backends.base import TextDelta, Usage
from adaptive_engine.server.platform import platform_of
from adaptive_engine.server.rest.deps import db_session, principal
from adaptive_engine.server.rest.errors import validated
from adaptive_engine.server.rest.json_input import CheckedRoute
from adaptive_engine.server.rest.json_route import json_post

router = APIRouter(tags=["inference"], route_class=CheckedRoute)
log = logging.getLogger(__name__)
BodyT = TypeVar("BodyT", bound=BaseModel)


def _body(data: Any, schema: type[BodyT]) -> tuple[dict[str, Any], BodyT]:
    """The JSON body (rest.json_input; a JSON string holding the object, as the official client sends
    embeddings, works too) and its view validated by ``schema``."""
    if not isinstance(data, dict):
        raise InvalidInput("the body must be a JSON object")
    return data, validated(schema.model_validate, data)


def _head(call: service.Call) -> dict[str, Any]:
    """The fields every answer and stream event of ``call`` starts with (schemas.AnswerHead)."""
    return {
        "id": str(call.request_id),
        "created": call.created,
        "model": call.target.label,
        "session_id": str(call.session_id),
    }


def _json(answer: Answer) -> Response:
    return Response(answer.to_json(), media_type="application/json")


def _sse(answer: Answer | dict[str, Any]) -> bytes:
    data = answer.to_json() if isinstance(answer, Answer) else pydantic_core.to_json(answer)
    return b"data: " + data + b"\n\n"


DONE = b"data: [DONE]\n\n"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def _error_event(error: Exception) -> bytes:
    domain = error if isinstance(error, DomainError) else Internal("generation failed")
    return _sse(openai_envelope(domain))


async def _named_use_case(body: Any, request: Request, session: AsyncSession) -> Any:
    """The guard's target: the use case that ``model`` names for this caller (rule in names.py). The
    resolved name is kept on the request, so the route does not resolve it twice."""
    if not isinstance(body, dict) or body.get("model") is None:
        return None
    named = await resolve_name(session, request.state.principal, platform_of(request).refs, body["model"])
    request.state.named_model = named
    return named.use_case  # a Ref: the guard checks the caller's right on it without looking it up again


def _named(request: Request) -> Named | None:
    return getattr(request.state, "named_model", None)


def inference_post(path: str, body: type[BaseModel]) -> Any:
    """A data-plane POST: straight from the middleware to the route (rest/json_route.py), guarded by
    ``inference:run`` on the use case its ``model`` names; the route validates the JSON it gets."""
    return json_post(
        router, path, body, permission="inference:run", use_case=_named_use_case, status_code=200, raw=True
    )


# --------------------------------------------------------------------------- models


# Any caller: the list holds only what the caller may use, and retrieving a name checks inference:run on it.
@router.get("/models", response_model=None, dependencies=[route_requires(None)])
async def list_models(session: AsyncSession = Depends(db_session), caller: Principal = Depends(principal)) -> Response:
    return _json(ModelList(data=await catalog.list_models(session, caller)))


@router.get("/models/{name:path}", response_model=None, dependencies=[route_requires(None)])
async def get_model(
    name: str, request: Request, session: AsyncSession = Depends(db_session), caller: Principal = Depends(principal)
) -> Response:
    return _json(await catalog.get_model(session, caller, platform_of(request).refs, name))


# --------------------------------------------------------------------------- chat


@inference_post("/chat/completions", ChatBody)
async def chat_completions(request: Request, data: Any, auth: Authorized) -> Response:
    raw, body = _body(data, ChatBody)
    call = await service.prepare_call(
        auth.session, auth.principal, platform_of(request), body, raw, prompt=None, named=_named(request)
    )
    if body.stream:
        return await _stream_response(call, chat=True)
    result = await service.complete(call)
    model_key = call.target.model_key
    choices = []
    for c in result.choices:
        completion_id = str(call.completion_ids[c.index])
        message = {"role": "assistant", "content": c.text} if c.message is None else {"role": "assistant", **c.message}
        message["id"] = completion_id
        choices.append(
            ChatChoice(
                index=c.index,
                message=message,
                finish_reason=c.finish_reason,
                completion_id=completion_id,
                model=model_key,
                logprobs=c.logprobs,
            )
        )
    return _json(
        ChatCompletionResponse(
            **_head(call),
            choices=choices,
            usage=service.usage_json(result.usage),
            **result.extra,
        )
    )


# --------------------------------------------------------------------------- completions


@inference_post("/completions", CompletionBody)
async def completions(request: Request, data: Any, auth: Authorized) -> Response:
    raw, body = _body(data, CompletionBody)
    prompt = service.one_prompt(body.prompt)
    call = await service.prepare_call(
        auth.session, auth.principal, platform_of(request), body, raw, prompt=prompt, named=_named(request)
    )
    if body.stream:
        return await _stream_response(call, chat=False)
    result = await service.complete(call)
    model_key = call.target.model_key
    return _json(
        CompletionResponse(
            **_head(call),
            choices=[
                CompletionChoice(
                    index=c.index,
                    text=c.text,
                    finish_reason=c.finish_reason,
                    logprobs=c.logprobs,
                    completion_id=str(call.completion_ids[c.index]),
                    model=model_key,
                )
                for c in result.choices
            ],
            usage=service.usage_json(result.usage),
            **result.extra,
        )
    )


# --------------------------------------------------------------------------- streaming


async def _stream_response(call: service.Call, *, chat: bool) -> StreamingResponse:
    served = await service.open_stream(call)
    head = _head(call)
    answer = ChatCompletionChunk if chat else CompletionChunk
    model_key = call.target.model_key
    completion_ids = [str(i) for i in call.completion_ids]

    def chunk(choices: list[Any], usage: dict[str, Any] | None = None) -> bytes:
        return _sse(answer(**head, choices=choices, usage=usage))

    def choice(delta: TextDelta) -> ChatChunkChoice | CompletionChunkChoice:
        completion_id = completion_ids[delta.index]
        if not chat:
            return CompletionChunkChoice(
                index=delta.index,
                text=delta.text,
                completion_id=completion_id,
                model=model_key,
                finish_reason=delta.finish_reason,
                logprobs=delta.logprobs,
            )
        # A provider's delta goes as it came (tool-call pieces...), with our id and the role on each, and text
        # content on each that is no tool call (the official client reads them on every chunk).
        piece = {"content": delta.text} if delta.delta is None else dict(delta.delta)
        if piece.get("content") is None and not piece.get("tool_calls"):
            piece["content"] = delta.text
        return ChatChunkChoice(
            index=delta.index,
            delta={"role": "assistant", **piece, "id": completion_id},
            completion_id=completion_id,
            finish_reason=delta.finish_reason,
            logprobs=delta.logprobs,
        )

    async def body() -> AsyncIterator[bytes]:
        try:
            async for event in served:
                if not isinstance(event, Usage):
                    yield chunk([choice(event)])
            if call.include_usage:  # the stream has ended: the completion is recorded
                yield chunk([], service.usage_json(served.transcript.usage or Usage()))
            yield DONE
        except DomainError as error:  # the answer has started: report in the stream, then end it
            yield _error_event(error)
            yield DONE
        except Exception:  # a bug must end the stream too, never leave the caller waiting
            log.exception("a stream failed")
            yield _error_event(Internal("generation failed"))
            yield DONE
        finally:
            await served.aclose()  # on a client disconnect this cancels the generation

    return StreamingResponse(body(), media_type="text/event-stream", headers=SSE_HEADERS)


# --------------------------------------------------------------------------- responses


@inference_post("/responses", ResponsesBody)
async def create_response(request: Request, data: Any, auth: Authorized) -> Response:
    raw, _ = _body(data, ResponsesBody)
    chat_raw = responses.to_chat(raw)
    body = validated(ChatBody.model_validate, chat_raw)
    call = await service.prepare_call(
        auth.session, auth.principal, platform_of(request), body, chat_raw, prompt=None, named=_named(request)
    )
    if not body.stream:
        return _json(responses.answer(call, raw, await service.complete(call)))
    served = await service.open_stream(call)
    return StreamingResponse(responses.stream(call, raw, served), media_type="text/event-stream", headers=SSE_HEADERS)


# --------------------------------------------------------------------------- embeddings


@inference_post("/embeddings", EmbeddingBody)
async def embeddings(request: Request, data: Any, auth: Authorized) -> Response:
    raw, body = _body(data, EmbeddingBody)
    unknown = sorted(k for k, v in raw.items() if v is not None and k not in EmbeddingBody.model_fields)
    if unknown:  # nothing is silently dropped: embeddings take only their documented fields
        raise InvalidInput(f"'{unknown[0]}' is not supported on /embeddings", details={"param": unknown[0]})
    fmt = service.encoding_format(body.encoding_format)
    answer = await service.embed(auth.session, auth.principal, platform_of(request), body, named=_named(request))
    tokens = answer.usage.prompt_tokens
    return _json(
        EmbeddingResponse(
            data=[Embedding(index=i, embedding=service.encode_vector(v, fmt)) for i, v in enumerate(answer.vectors)],
            model=answer.target.label,
            usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens),
        )
    )
