"""ASGI middleware: authentication of every route but /health, request size limits, the request's
database session, and Prometheus request metrics."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from adaptive_engine.server.auth import sessions
from adaptive_engine.server.auth.principal import Principal, authenticate
from adaptive_engine.server.auth.scrape import is_scrape_token
from adaptive_engine.server.errors import PermissionDenied, Unauthenticated
from adaptive_engine.server.platform import Platform, platform_of
from adaptive_engine.server.rest.deps import SESSION_KEY
from adaptive_engine.server.rest.errors import error_body, exception_response

PUBLIC_PATHS = frozenset({"/health"})


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
        from adaptive_engine.server.errors import PayloadTooLarge

        too_large = PayloadTooLarge(f"request body exceeds the limit of {self.max_bytes} bytes")
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await _send_json(send, 413, error_body(scope["path"], too_large))
                return
        received = 0

        async def limited_receive() -> dict[str, Any]:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise too_large
            return message

        await self.app(scope, limited_receive, send)


class MetricsMiddleware:
    def __init__(self, app: ASGIApp, registry: CollectorRegistry) -> None:
        self.app = app
        self.requests = Counter(
            "adaptive_http_requests", "HTTP requests", ["method", "route", "status"], registry=registry
        )
        self.latency = Histogram(
            "adaptive_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def capture(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            count, latency = self._series(scope["method"], route, status)
            count.inc()
            latency.observe(time.perf_counter() - start)

    def _series(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        # The labelled children, found once per (method, route, status): labels() takes a lock and
        # builds a key on every call.
        key = (method, route, status)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = (self.requests.labels(method, route, str(status)),
                                           self.latency.labels(method, route))
        return found


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

        async def watch(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except ClientDisconnect:
            return  # nobody to answer
        except Exception as exc:  # noqa: BLE001 - the point of this middleware
            if started:
                raise
            response = exception_response(exc, scope["path"])
            await response(scope, receive, send)
