"""How long a client may hold a connection without sending its request: the options every uvicorn server of
ours runs with (``serve`` and the tests' servers alike).

uvicorn 0.54 closes an idle keep-alive connection only after a response (``timeout_keep_alive``); it has no
limit on the request head: a connection that never sends a byte, or sends its headers a byte at a time, is
held for ever (1,000 such sockets stayed open against one server). :class:`GuardedHttpProtocol` adds that
limit to uvicorn's own protocol. A request body sent too slowly is the application's to limit, since only
it knows when it waits for one: :class:`BodyReadTimeoutMiddleware`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from adaptive_engine.server.errors import RequestTimeout
from adaptive_engine.server.middleware import error_body


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request line and headers are not all in
    within ``request_head_timeout_s`` of the connection (or of the previous response on it)."""

    head_timeout_s: float = 10.0
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._head_arrived()
        super().connection_lost(exc)

    def on_headers_complete(self) -> None:
        self._head_arrived()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # Waiting for the next request (a pipelined one already has its head): uvicorn's keep-alive timer
        # closes an idle connection sooner, but stops as soon as a first byte arrives.
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self._await_head()

    def _await_head(self) -> None:
        self._head_arrived()
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._head_too_slow)

    def _head_arrived(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def uvicorn_options(settings: Any) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.Config`` from the server's settings."""
    protocol = type("GuardedHttpProtocol", (GuardedHttpProtocol,), {"head_timeout_s": settings.request_head_timeout_s})
    return {
        "http": protocol,
        "timeout_keep_alive": settings.keep_alive_timeout_s,
        "limit_concurrency": settings.max_connections,
    }


class BodyReadTimeoutMiddleware:
    """A request whose body stops arriving for ``timeout_s`` gets 408 REQUEST_TIMEOUT and its connection is
    closed (what is left of its body cannot be told from a next request). Only waits for body bytes are
    limited: once the body is complete, waiting for the client to disconnect (streamed answers) is not."""

    def __init__(self, app: ASGIApp, timeout_s: float) -> None:
        self.app = app
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.timeout_s <= 0:
            await self.app(scope, receive, send)
            return
        body_done = False
        timed_out: RequestTimeout | None = None
        started = False

        async def guarded_receive() -> Message:
            nonlocal body_done, timed_out
            if body_done:
                return await receive()
            try:
                async with asyncio.timeout(self.timeout_s):
                    message = await receive()
            except TimeoutError:
                timed_out = RequestTimeout(f"the request body stopped arriving for {self.timeout_s:g} s")
                raise timed_out from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        async def closing_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                if timed_out is not None:
                    message = {**message, "headers": [*message.get("headers", []), (b"connection", b"close")]}
            await send(message)

        try:
            await self.app(scope, guarded_receive, closing_send)
        except RequestTimeout as error:
            if started:
                raise
            payload = json.dumps(error_body(scope["path"], error)).encode()
            await closing_send(
                {
                    "type": "http.response.start",
                    "status": error.http_status,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(len(payload)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})
