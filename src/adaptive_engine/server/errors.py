"""The one error tree of the server.

Services raise these; the GraphQL layer turns them into errors with ``extensions.code`` and the REST
layer into the OpenAI error envelope. Anything else that escapes is reported as INTERNAL without detail.
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    code: str = "INTERNAL"
    http_status: int = 500
    # The OpenAI envelope's "type".
    error_type: str = "server_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class NotFound(DomainError):
    code = "NOT_FOUND"
    http_status = 404
    error_type = "not_found_error"


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"
    http_status = 409
    error_type = "conflict_error"


class Conflict(DomainError):
    """The request is valid but the resource's current state forbids it (e.g. cancel a finished job)."""

    code = "CONFLICT"
    http_status = 409
    error_type = "conflict_error"


class InvalidInput(DomainError):
    code = "INVALID_INPUT"
    http_status = 400
    error_type = "invalid_request_error"


class PayloadTooLarge(InvalidInput):
    http_status = 413


class QueryTooComplex(InvalidInput):
    """A GraphQL document over one of the server's limits (tokens, cost, depth, aliases, fragment expansion)."""

    code = "QUERY_TOO_COMPLEX"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"
    http_status = 401
    error_type = "authentication_error"


class PermissionDenied(DomainError):
    code = "PERMISSION_DENIED"
    http_status = 403
    error_type = "permission_error"


class RequestTimeout(DomainError):
    """The client stopped sending its request before it was complete."""

    code = "REQUEST_TIMEOUT"
    http_status = 408
    error_type = "invalid_request_error"


class RateLimited(DomainError):
    code = "RATE_LIMITED"
    http_status = 429
    error_type = "rate_limit_error"
    # Seconds to wait before trying again: the REST answer's Retry-After header.
    retry_after: int | None = None


class UpstreamError(DomainError):
    """An external provider or backend failed; the message is the provider's."""

    code = "UPSTREAM_ERROR"
    http_status = 502
    error_type = "upstream_error"


class UpstreamTimeout(UpstreamError):
    code = "UPSTREAM_TIMEOUT"
    http_status = 504


class DeadlineExceeded(DomainError):
    """The request ran past its time budget and was cancelled; nothing it did was kept."""

    code = "DEADLINE_EXCEEDED"
    http_status = 504
    error_type = "timeout_error"


class Unavailable(DomainError):
    """The target exists but cannot serve now (model offline, loading)."""

    code = "UNAVAILABLE"
    http_status = 503
    error_type = "unavailable_error"


class SandboxUnavailable(Unavailable):
    """User code was refused: this machine cannot sandbox it and the operator did not allow running it bare."""

    code = "SANDBOX_UNAVAILABLE"


class Internal(DomainError):
    code = "INTERNAL"
    http_status = 500


INTERNAL_MESSAGE = "Internal server error"


def openai_envelope(error: DomainError) -> dict[str, Any]:
    body: dict[str, Any] = {"message": error.message, "type": error.error_type, "code": error.code}
    if error.details:
        body["details"] = error.details
    return {"error": body}
