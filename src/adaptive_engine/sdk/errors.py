"""The SDK's typed error tree, mapped from HTTP statuses and GraphQL ``extensions.code``."""

from __future__ import annotations

from typing import Any


class AdaptiveError(Exception):
    """Base of every error the SDK raises."""


class UseCaseNotSetError(AdaptiveError, ValueError):
    """A method needs a use case and none was given nor set with ``set_default_use_case``."""


class APIConnectionError(AdaptiveError):
    """The server could not be reached."""


class APITimeoutError(APIConnectionError):
    """The request timed out."""


class APIError(AdaptiveError):
    """The server answered with an error."""

    def __init__(self, message: str, *, status_code: int | None = None, code: str | None = None, body: Any = None):
        super().__init__(message)
        self.message = message
        self.status_code = status_code
        self.code = code
        self.body = body
        # The response's headers (Retry-After, request id), set by the transport.
        self.headers: dict[str, str] = {}


class ValidationError(APIError):
    """INVALID_INPUT / 400, 413, 422."""


class AuthenticationError(APIError):
    """UNAUTHENTICATED / 401."""


class PermissionDeniedError(APIError):
    """PERMISSION_DENIED / 403."""


class NotFoundError(APIError):
    """NOT_FOUND / 404."""


class ConflictError(APIError):
    """ALREADY_EXISTS or CONFLICT / 409."""


class RateLimitError(APIError):
    """RATE_LIMITED / 429: a limit of the caller's API key, user or use case is reached. ``limit`` names it
    (requests_per_minute, tokens_per_minute, max_concurrent, budget_daily, budget_monthly), ``scope`` says
    whose (API_KEY, USER, USE_CASE), ``retry_after`` is the seconds to wait (the Retry-After header)."""

    def _details(self) -> dict[str, Any]:
        error = self.body.get("error") if isinstance(self.body, dict) else None
        details = error.get("details") if isinstance(error, dict) else None
        return details if isinstance(details, dict) else {}

    @property
    def limit(self) -> str | None:
        return self._details().get("limit")

    @property
    def scope(self) -> str | None:
        return self._details().get("scope")

    @property
    def retry_after(self) -> float | None:
        headers = getattr(self, "headers", None) or {}
        value = headers.get("retry-after", self._details().get("retry_after"))
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None


# The name the server's error code suggests; the same class.
RateLimitedError = RateLimitError


class ServerError(APIError):
    """INTERNAL, upstream or unavailable / 5xx."""


BY_CODE: dict[str, type[APIError]] = {
    "INVALID_INPUT": ValidationError,
    "QUERY_TOO_COMPLEX": ValidationError,
    "UNAUTHENTICATED": AuthenticationError,
    "PERMISSION_DENIED": PermissionDeniedError,
    "NOT_FOUND": NotFoundError,
    "ALREADY_EXISTS": ConflictError,
    "CONFLICT": ConflictError,
    "RATE_LIMITED": RateLimitError,
    "INTERNAL": ServerError,
    "UPSTREAM_ERROR": ServerError,
    "UPSTREAM_TIMEOUT": ServerError,
    "DEADLINE_EXCEEDED": ServerError,
    "UNAVAILABLE": ServerError,
    # The server cannot sandbox user code (recipes, custom graders) and refuses to run it.
    "SANDBOX_UNAVAILABLE": ServerError,
}

BY_STATUS: dict[int, type[APIError]] = {
    400: ValidationError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    413: ValidationError,
    422: ValidationError,
    429: RateLimitError,
}


def error_for(message: str, *, status_code: int | None, code: str | None, body: Any = None) -> APIError:
    cls = BY_CODE.get(code or "") or BY_STATUS.get(status_code or 0)
    if cls is None:
        cls = ServerError if (status_code or 500) >= 500 else APIError
    return cls(message, status_code=status_code, code=code, body=body)
