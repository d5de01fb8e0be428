"""POST routes that take one JSON body, guarded and validated in one pass, for the data plane (inference and
logging routes): they carry the most requests, and FastAPI's per-request work around a route (matching it among
all routes, solving its dependencies, its exception and exit-stack middleware) was a third of such a request.
The route reads like any other::

    @json_post(router, "/feedback", AddFeedbackRequest, permission="feedback:write")
    async def add_feedback(request: Request, body: AddFeedbackRequest, auth: Authorized) -> FeedbackOutput: ...

The body is parsed once, with the checks every request JSON gets (rest/json_input.py); the guard (the same
check as ``route_requires``, in the same order: the caller's right before the body's shape) sees the parsed
JSON; what the handler returns (a pydantic model, or lists and dicts of them) is sent as JSON with
``status_code``, and a :class:`Response` (a stream...) as it is. With ``raw=True`` the handler gets the parsed
JSON and validates it itself (``body`` then only documents it): the inference routes keep the fields as sent.
The route is registered on the router as usual (the guard's table and the OpenAPI document see it, with its
body); :class:`JsonRouteShortcut` sends its requests straight to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pydantic_core
from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import TypeAdapter
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Receive, Scope, Send

from adaptive_engine.server.auth.guard import (
    Authorized,
    BodyTarget,
    Requirement,
    authorize_request,
    iter_routes,
)
from adaptive_engine.server.platform import platform_of
from adaptive_engine.server.rest.deps import db_session
from adaptive_engine.server.rest.errors import exception_response, validated
from adaptive_engine.server.rest.json_input import decode_json, read_json, refuse_nul
from adaptive_engine.server.rest.openapi import json_body

Handler = Callable[[Request, Any, Authorized], Awaitable[Any]]


def json_post(
    router: APIRouter,
    path: str,
    body: Any,
    *,
    permission: str,
    use_case: BodyTarget = None,
    status_code: int = 201,
    raw: bool = False,
) -> Callable[[Handler], Handler]:
    adapter: TypeAdapter[Any] = TypeAdapter(body)

    def register(handler: Handler) -> Handler:
        async def answer(request: Request, data: Any) -> Response:
            auth = await authorize_request(request, await db_session(request), permission, use_case, data)
            value = data if raw else validated(adapter.validate_python, data)
            result = await handler(request, value, auth)
            if isinstance(result, Response):
                return result
            return Response(pydantic_core.to_json(result), status_code=status_code, media_type="application/json")

        @json_body(body)  # declared in the OpenAPI document
        async def endpoint(request: Request) -> Response:
            return await answer(request, await read_json(request))

        endpoint.__guard__ = Requirement(permission)  # type: ignore[attr-defined]
        endpoint.__json_route__ = answer  # type: ignore[attr-defined]  # what the shortcut calls
        endpoint.__doc__ = handler.__doc__
        router.add_api_route(
            path, endpoint, methods=["POST"], status_code=status_code, response_model=None, name=handler.__name__
        )
        return handler

    return register


class JsonRouteShortcut:
    """ASGI middleware, innermost: a POST to a :func:`json_post` route goes straight to its endpoint (the
    app's error handling applied the same way), past FastAPI's router and per-request machinery;
    everything else goes on to the app, and everything when OpenTelemetry tracing is on."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: dict[str, tuple[Any, Callable[[Request, Any], Awaitable[Response]]]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # With OpenTelemetry on (FastAPI's telemetry), requests go through the router: it names the route on the
        # request's server span and traces the endpoint.
        if scope["type"] == "http" and scope["method"] == "POST" and scope.get("fastapi.telemetry") is None:
            if self._routes is None:
                self._routes = {
                    path: (route, dependant.call.__json_route__)
                    for path, methods, dependant, route in iter_routes(scope["app"])
                    if "POST" in methods and hasattr(getattr(dependant, "call", None), "__json_route__")
                }
            found = self._routes.get(scope["path"])
            if found is not None:
                route, answer = found
                scope["route"] = route  # what the metrics label requests by
                try:
                    if scope["query_string"]:  # the check every /api/v1 route makes (rest.json_input.CheckedRoute)
                        refuse_nul(Request(scope).query_params.multi_items(), "query")
                    data = decode_json(await _read_body(receive), platform_of(scope["app"]).json_limits, unwrap=True)
                    response = await answer(Request(scope, receive), data)
                except ClientDisconnect:
                    return  # nobody to answer
                except Exception as exc:  # noqa: BLE001 - answered as the app's handlers would
                    response = exception_response(exc)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


async def _read_body(receive: Receive) -> bytes:
    """The request's whole body, straight from the ASGI messages (Starlette's stream wrapper costs more)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
