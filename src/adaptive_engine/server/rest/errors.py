"""REST error mapping: the OpenAI error envelope with the domain error's HTTP status."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from adaptive_engine.server.errors import INTERNAL_MESSAGE, DomainError, Internal, InvalidInput, NotFound, openai_envelope

log = logging.getLogger("adaptive_engine.rest")


def error_response(error: DomainError) -> JSONResponse:
    return JSONResponse(openai_envelope(error), status_code=error.http_status)


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors():
        location = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
        parts.append(f"{location}: {err.get('msg')}" if location else str(err.get("msg")))
    return "; ".join(parts) or "invalid request"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(_request: Request, exc: DomainError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(InvalidInput(_describe_validation(exc)))

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
        log.error("internal error", exc_info=exc)
        return error_response(Internal(INTERNAL_MESSAGE))
