"""REST error mapping: the OpenAI error envelope with the domain error's HTTP status."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from adaptive_engine.server.errors import (
    INTERNAL_MESSAGE,
    DomainError,
    Internal,
    InvalidInput,
    NotFound,
    openai_envelope,
)

log = logging.getLogger("adaptive_engine.rest")
GRAPHQL_PATH = "/api/graphql"

T = TypeVar("T")


def error_body(path: str, error: DomainError) -> dict[str, Any]:
    """The error as the route's clients read errors: GraphQL's ``errors`` list, or the OpenAI envelope."""
    if path.startswith(GRAPHQL_PATH):
        return {"data": None, "errors": [{"message": error.message, "extensions": {"code": error.code}}]}
    return openai_envelope(error)


def error_response(error: DomainError, path: str = "") -> JSONResponse:
    retry_after = getattr(error, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return JSONResponse(error_body(path, error), status_code=error.http_status, headers=headers)


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """One line naming each invalid field (pydantic's error dicts; FastAPI's ``body`` prefix left out)."""
    parts = []
    for err in errors:
        location = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{location}: {err.get('msg')}" if location else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def validated(validate: Callable[[Any], T], data: Any) -> T:
    """``validate(data)`` (a pydantic validator), its errors refused as one INVALID_INPUT naming each field."""
    try:
        return validate(data)
    except ValidationError as exc:
        raise InvalidInput(describe_validation_errors(exc.errors())) from None


def exception_response(exc: Exception, path: str = "") -> JSONResponse:
    """The answer to an exception a route raised: its envelope for a domain error, else an internal error
    (logged; its details stay in the log)."""
    if isinstance(exc, DomainError):
        return error_response(exc, path)
    log.error("internal error", exc_info=exc)
    return error_response(Internal(INTERNAL_MESSAGE), path)


def install_error_handlers(app: FastAPI) -> None:
    """Typed answers to what routes raise. Any other exception is answered by middleware.LastResortMiddleware
    (Starlette's handler for ``Exception`` answers, then re-raises, and the server drops the connection)."""

    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> JSONResponse:
        return exception_response(exc, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(InvalidInput(describe_validation_errors(exc.errors())), request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(NotFound("no such route"), request.url.path)
        error = DomainError(str(exc.detail))
        error.http_status = exc.status_code
        error.code = "INVALID_INPUT" if exc.status_code < 500 else "INTERNAL"
        error.error_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return error_response(error, request.url.path)
