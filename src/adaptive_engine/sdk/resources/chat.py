from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypedDict, Unpack, overload

from adaptive_engine.sdk._base import C, Operation, Resource
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


if TYPE_CHECKING:
    from adaptive_engine.sdk.client import Adaptive, AsyncAdaptive


class ChatOptions(TypedDict, total=False):
    """The keyword arguments of ``chat.create`` after ``messages`` and ``stream`` (see its docstring)."""

    model: str | None
    stop: list[str] | None
    max_tokens: int | None
    temperature: float | None
    top_p: float | None
    stream_include_usage: bool | None
    session_id: str | uuid.UUID | None
    use_case: str | None
    user: str | uuid.UUID | None
    ab_campaign: str | None
    n: int | None
    labels: dict[str, str] | None
    store: bool | None


class SyncChatCreate(Protocol):
    @overload
    def __call__(
        self, messages: list[dict[str, Any]], stream: Literal[False] | None = None, **options: Unpack[ChatOptions]
    ) -> ChatResponse: ...
    @overload
    def __call__(
        self, messages: list[dict[str, Any]], stream: Literal[True], **options: Unpack[ChatOptions]
    ) -> Iterator[ChatResponseChunk]: ...
    @overload
    def __call__(
        self, messages: list[dict[str, Any]], stream: bool | None = None, **options: Unpack[ChatOptions]
    ) -> ChatResponse | Iterator[ChatResponseChunk]: ...


class AsyncChatCreate(Protocol):
    @overload
    def __call__(
        self, messages: list[dict[str, Any]], stream: Literal[False] | None = None, **options: Unpack[ChatOptions]
    ) -> Awaitable[ChatResponse]: ...
    @overload
    def __call__(
        self, messages: list[dict[str, Any]], stream: Literal[True], **options: Unpack[ChatOptions]
    ) -> Awaitable[AsyncIterator[ChatResponseChunk]]: ...
    @overload
    def __call__(
        self, messages: list[dict[str, Any]], stream: bool | None = None, **options: Unpack[ChatOptions]
    ) -> Awaitable[ChatResponse | AsyncIterator[ChatResponseChunk]]: ...


class _CreateOperation:
    """``chat.create`` as an operation whose result type follows ``stream``: a response, or an iterator of
    chunks (an async one on AsyncAdaptive)."""

    def __init__(self, method: Callable[..., Generator[Any, Any, Any]]) -> None:
        self._operation: Operation[..., Any] = Operation(method)

    @overload
    def __get__(self, resource: None, owner: type | None = None) -> Callable[..., Any]: ...
    @overload
    def __get__(self, resource: Resource[Adaptive], owner: type | None = None) -> SyncChatCreate: ...
    @overload
    def __get__(self, resource: Resource[AsyncAdaptive], owner: type | None = None) -> AsyncChatCreate: ...
    def __get__(self, resource: Resource[Any] | None, owner: type | None = None) -> Any:
        return self._operation.__get__(resource, owner)


class Chat(Resource[C]):
    """Chat completions on a use case's models (``POST /api/v1/chat/completions``)."""

    @_CreateOperation
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
    ) -> Generator[Any, Any, ChatResponse | Iterator[ChatResponseChunk] | AsyncIterator[ChatResponseChunk]]:
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
            # The transport answers a Stream with an iterator of _chunk's results (an async one on AsyncAdaptive).
            chunks: Iterator[ChatResponseChunk] | AsyncIterator[ChatResponseChunk] = yield Stream(
                "POST", "/chat/completions", json=body, parse=_chunk
            )
            return chunks
        data = yield Rest("POST", "/chat/completions", json=body)
        return ChatResponse.model_validate(data)
