"""REST error mapping: the OpenAI error envelope with the domain error's HTTP status."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from adaptive_engine.server.errors import INTERNAL_MESSAGE, DomainError, Internal, InvalidInput, NotFound, openai_envelope

log = logging.getLogger("adaptive_engine.rest")


def error_response(error: DomainError) -> JSONResponse:
    return JSONResponse(openai_envelope(error), status_code=error.http_status)


def describe_validation_errors(errors: Sequence[Any]) -> str:
    """One line naming each invalid field (pydantic's error dicts; FastAPI's ``body`` prefix left out)."""
    parts = []
    for err in errors:
        location = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{location}: {err.get('msg')}" if location else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def exception_response(exc: Exception) -> JSONResponse:
    """The answer to an exception a route raised: its envelope for a domain error, else an internal error
    (logged; its details stay in the log)."""
    if isinstance(exc, DomainError):
        return error_response(exc)
    log.error("internal error", exc_info=exc)
    return error_response(Internal(INTERNAL_MESSAGE))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        return exception_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(InvalidInput(describe_validation_errors(exc.errors())))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            return error_response(NotFound("no such route"))
        error = DomainError(str(exc.detail))
        error.http_status = exc.status_code
        error.code = "INVALID_INPUT" if exc.status_code < 500 else "INTERNAL"
        error.error_type = "invalid_request_error" if exc.status_code < 500 else "server_error"
        return error_response(error)

    @app.exception_handler(Exception)
    async def _internal(_request: Request, exc: Exception) -> JSONResponse:
        return exception_response(exc)
