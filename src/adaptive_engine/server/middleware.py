"""ASGI middleware: authentication of every route but /health, request size limits, the request's
database session, and each request's id, metrics and access log."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from adaptive_engine.server.auth import sessions
from adaptive_engine.server.auth.principal import Principal, authenticate
from adaptive_engine.server.auth.scrape import is_scrape_token
from adaptive_engine.server.errors import PayloadTooLarge, PermissionDenied, Unauthenticated
from adaptive_engine.server.observability.logs import ACCESS_LOGGER, incoming_request_id, request_id
from adaptive_engine.server.observability.metrics import Metrics
from adaptive_engine.server.platform import Platform, platform_of
from adaptive_engine.server.rest.deps import SESSION_KEY
from adaptive_engine.server.rest.errors import error_body, exception_response

PUBLIC_PATHS = frozenset({"/health", "/ready"})


async def _send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class AuthMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    @staticmethod
    def _authenticate(platform: Platform, token: str | None) -> Callable[[], Awaitable[Principal]]:
        async def read() -> Principal:
            async with platform.sessionmaker() as session:
                return await authenticate(session, token)

        return read

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        platform = platform_of(scope["app"])
        token = sessions.bearer_token(scope)
        if is_scrape_token(platform.settings, scope["path"], token):
            # The scrape token is no API key: no principal, and the /metrics route asks for no other.
            scope.setdefault("state", {})["metrics_scraper"] = True
            await self.app(scope, receive, send)
            return
        cache = platform.auth_cache
        try:
            principal = cache.get(token) if cache is not None else None
            if principal is None and token is None and (cookie := sessions.session_cookie(scope)) is not None:
                principal = await sessions.principal_from_cookie(platform.sessionmaker, cache, scope, cookie)
            if principal is None:
                read = self._authenticate(platform, token)
                principal = await (cache.load(token, read) if cache is not None else read())
        except (Unauthenticated, PermissionDenied) as error:
            await _send_json(send, error.http_status, error_body(scope["path"], error))
            return
        scope.setdefault("state", {})["principal"] = principal
        await self.app(scope, receive, send)


class SessionScopeMiddleware:
    """Closes the database session a request opened (see ``rest.deps.db_session``), once its answer is
    sent, streamed answers included; what the route did not commit is rolled back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            session = scope.get("state", {}).pop(SESSION_KEY, None)
            if session is not None:
                await session.close()


class BodySizeLimitMiddleware:
    """Refuses bodies over the configured size before they are read whole. Routes that stream their
    body to disk under limits of their own (chunked dataset parts, job artifacts and models) match
    ``streamed`` and are left to those limits."""

    def __init__(self, app: ASGIApp, max_bytes: int, streamed: re.Pattern[str] | None = None) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.streamed = streamed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.streamed is not None and self.streamed.fullmatch(scope["path"])):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _send_json(send, 413, error_body(scope["path"], self._too_large()))
                return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"request body exceeds the limit of {self.max_bytes} bytes")


class ObservabilityMiddleware:
    """Outermost but for the last resort: each request's id (``X-Request-ID``, taken from the caller or made,
    sent back, and on every log record written meanwhile), its Prometheus series, and in JSON log mode its
    access line. One wrapper for the three, since the data plane pays for every layer."""

    def __init__(self, app: ASGIApp, metrics: Metrics, access_log: bool = False) -> None:
        self.app = app
        self.metrics = metrics
        self.access = logging.getLogger(ACCESS_LOGGER) if access_log else None
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        rid = incoming_request_id(scope["headers"])
        header = (b"x-request-id", rid.encode())
        token = request_id.set(rid)

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), header]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            elapsed = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or _mounted_route(scope["path"])
            count, latency = self._series(scope["method"], route, status)
            count.inc()
            latency.observe(elapsed)
            if self.access is not None:
                client = scope.get("client")
                self.access.info(
                    "%s %s %d",
                    scope["method"],
                    scope["path"],
                    status,
                    extra={
                        "method": scope["method"],
                        "path": scope["path"],
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 3),
                        "client": client[0] if client else None,
                    },
                )
            request_id.reset(token)

    def _series(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        # Found once per (method, route, status): a dict lookup per request.
        key = (method, route, status)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = (
                self.metrics.http_requests(method, route, str(status)),
                self.metrics.http_duration(method, route),
            )
        return found


def _mounted_route(path: str) -> str:
    """Routes no FastAPI route names on the scope: GraphQL (its own router; per operation in the
    adaptive_graphql series) and everything else, one label."""
    return "/api/graphql" if path == "/api/graphql" else "unmatched"


class LastResortMiddleware:
    """Outermost: an exception that no handler answered becomes the INTERNAL envelope (logged) and the
    connection stays usable. (Starlette's own last handler answers, then re-raises, and uvicorn drops the
    keep-alive connection.) An answer that has started cannot be replaced: the exception goes on and the
    server ends the connection, so the client learns that the body is incomplete."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ClientDisconnect:
            return  # nobody to answer
        except Exception as exc:  # the point of this middleware
            if started:
                raise
            response = exception_response(exc, scope["path"])
            await response(scope, receive, send)
