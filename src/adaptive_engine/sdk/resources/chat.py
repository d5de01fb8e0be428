from __future__ import annotations

import uuid
from typing import Any

from adaptive_engine.sdk._base import C, Resource, operation
from adaptive_engine.sdk._requests import Rest, Stream
from adaptive_engine.sdk.errors import error_for
from adaptive_engine.sdk.types import ChatResponse, ChatResponseChunk


def model_path(use_case: str, model: str | None) -> str:
    """The REST ``model`` field: ``use_case`` (its default model) or ``use_case/model``."""
    return f"{use_case}/{model}" if model else use_case


def _chunk(data: Any) -> ChatResponseChunk:
    if isinstance(data, dict) and isinstance(data.get("error"), dict):  # the server failed mid-stream
        err = data["error"]
        raise error_for(str(err.get("message")), status_code=None, code=err.get("code"), body=data)
    return ChatResponseChunk.model_validate(data)


class Chat(Resource[C]):
    """Chat completions on a use case's models (``POST /api/v1/chat/completions``)."""

    @operation
    def create(
        self,
        messages: list[dict[str, Any]],
        stream: bool | None = None,
        model: str | None = None,
        stop: list[str] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stream_include_usage: bool | None = None,
        session_id: str | uuid.UUID | None = None,
        use_case: str | None = None,
        user: str | uuid.UUID | None = None,
        ab_campaign: str | None = None,
        n: int | None = None,
        labels: dict[str, str] | None = None,
        store: bool | None = None,
    ):
        """Create a chat completion; with ``stream=True``, an iterator of chunks (async iterator on
        AsyncAdaptive) whose ``choices[i].delta.content`` carry the text as it is generated."""
        body: dict[str, Any] = {
            "model": model_path(self.use_case_key(use_case), model),
            "messages": [dict(m) for m in messages],
            "stop": stop,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "top_p": top_p,
            "session_id": str(session_id) if session_id is not None else None,
            "user": str(user) if user is not None else None,
            "ab_campaign": ab_campaign,
            "n": n,
            "labels": labels,
            "store": store,
        }
        body = {k: v for k, v in body.items() if v is not None}
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": bool(stream_include_usage)}
            return (yield Stream("POST", "/chat/completions", json=body, parse=_chunk))
        data = yield Rest("POST", "/chat/completions", json=body)
        return ChatResponse.model_validate(data)
