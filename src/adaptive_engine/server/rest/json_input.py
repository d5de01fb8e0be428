"""Request JSON, decoded and checked in one place: REST bodies (FastAPI's, the logging routes' fast path,
the inference routes'), GraphQL bodies and variables. What a database or Python cannot take is refused here
with a 400 INVALID_INPUT that names it, before a guard, route or service sees the value:

- the NUL character (U+0000) in any string or key: PostgreSQL cannot store it in text or JSON, so it is
  refused on SQLite too (both databases accept the same requests);
- lone UTF-16 surrogates (U+D800 to U+DFFF): not UTF-8; the parser refuses them;
- nesting deeper than ``max_json_depth``, or an array or object of more than ``max_json_items`` items.

REST routes that use :class:`CheckedRoute` (every /api/v1 router) get their body decoded here and the NUL
check on their path and query parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pydantic_core
from fastapi import Request, Response
from fastapi.routing import APIRoute

from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.platform import platform_of

NUL_MESSAGE = "text fields cannot contain the NUL character (U+0000)"
SURROGATE_MESSAGE = "text cannot contain lone surrogates (U+D800 to U+DFFF) or incomplete \\u escapes"
BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class JsonLimits:
    max_depth: int = 64
    max_items: int = 10_000


def decode_json(raw: bytes | str, limits: JsonLimits, *, what: str = "the body", unwrap: bool = False) -> Any:
    """Parse and check ``raw``; ``unwrap``: a JSON string holding JSON (some clients encode bodies twice) is
    parsed once more."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")  # a lone surrogate stays visible to the parser
    try:
        value = pydantic_core.from_json(raw)
    except ValueError as exc:
        if not raw.strip():
            raise InvalidInput("a JSON body is required" if what == "the body" else f"{what} is empty") from None
        raise InvalidInput(_parse_error(str(exc), what, limits)) from None
    if _may_break_limits(raw, limits):
        check_value(value, limits)
    if unwrap and isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        return decode_json(value, limits, what=what)
    return value


def _parse_error(message: str, what: str, limits: JsonLimits) -> str:
    if "recursion limit" in message:
        return f"{what} nests deeper than {limits.max_depth} levels"
    if "surrogate" in message or "hex escape" in message:
        return f"{SURROGATE_MESSAGE} ({message})"
    if "unicode code point" in message:
        return f"{what} is not valid UTF-8 ({message})"
    return f"{what} is not valid JSON: {message}"


def _may_break_limits(raw: bytes, limits: JsonLimits) -> bool:
    """Whether the parsed value needs :func:`check_value`, from byte counts (C speed, no walk): the parser
    refuses raw control characters, so a NUL can only come from a ``\\u0000`` escape; no value nests
    deeper than its number of brackets, nor holds more items than commas + 1."""
    return (
        b"\\u0000" in raw or raw.count(b"[") + raw.count(b"{") > limits.max_depth or raw.count(b",") >= limits.max_items
    )


def check_value(value: Any, limits: JsonLimits) -> None:
    """Refuse NUL characters, deep nesting and oversized arrays/objects anywhere in a decoded JSON value."""
    stack: list[tuple[Any, int, tuple[Any, ...]]] = [(value, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, str):
            if "\x00" in node:
                raise InvalidInput(NUL_MESSAGE + _at(path))
            continue
        if isinstance(node, dict):
            items: Any = node.items()
        elif isinstance(node, list):
            items = enumerate(node)
        else:
            continue
        if depth > limits.max_depth:
            raise InvalidInput(f"JSON nests deeper than {limits.max_depth} levels{_at(path)}")
        if len(node) > limits.max_items:
            raise InvalidInput(f"an array or object has more than {limits.max_items} items{_at(path)}")
        for key, item in items:
            if isinstance(key, str) and "\x00" in key:
                raise InvalidInput(NUL_MESSAGE + _at((*path, key)))
            stack.append((item, depth + 1, (*path, key)))


def _at(path: tuple[Any, ...]) -> str:
    if not path:
        return ""
    parts = (str(p) if len(str(p)) <= 40 else str(p)[:40] + "…" for p in path)
    return " (at " + ".".join(parts).replace("\x00", "\\u0000") + ")"


def refuse_nul(values: Any, kind: str) -> None:
    """NUL in a path or query parameter (``values``: name, value pairs)."""
    for name, value in values:
        if "\x00" in name or "\x00" in value:
            raise InvalidInput(f"{NUL_MESSAGE} (in the {kind} parameter '{name.replace(chr(0), '')}')")


class CheckedRequest(Request):
    """A request whose ``json()`` is :func:`decode_json` (FastAPI's body parsing and the guard read it)."""

    async def json(self) -> Any:
        if not hasattr(self, "_checked_json"):
            self._checked_json = decode_json(await self.body(), platform_of(self).json_limits, unwrap=True)
        return self._checked_json


async def read_json(request: Request) -> Any:
    """The request's JSON body through :func:`decode_json`, decoded once per request."""
    if isinstance(request, CheckedRequest):
        return await request.json()
    return decode_json(await request.body(), platform_of(request).json_limits, unwrap=True)


def _is_json(request: Request) -> bool:
    content_type = request.headers.get("content-type", "")
    return "json" in content_type.split(";", 1)[0]


class CheckedRoute(APIRoute):
    """The route class of every /api/v1 router: path and query parameters with a NUL are refused, and a JSON
    body is decoded by :func:`decode_json` before FastAPI, the guard or the route reads it (their errors then
    name the problem; FastAPI would answer "There was an error parsing the body"). A route that parses its
    body by hand says so with :func:`adaptive_engine.server.rest.openapi.json_body`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        declared_body = self.body_field is not None

        async def checked(request: Request) -> Response:
            refuse_nul(request.path_params.items(), "path")
            refuse_nul(request.query_params.multi_items(), "query")
            if request.method in BODY_METHODS:
                by_hand = getattr(self.endpoint, "__json_body__", None) is not None
                if by_hand or (declared_body and _is_json(request)):
                    request = CheckedRequest(request.scope, request.receive)
                    await request.json()  # refusals raised here reach the app's error handlers as they are
            return await handler(request)

        return checked
