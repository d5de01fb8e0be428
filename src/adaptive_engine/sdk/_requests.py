"""What a resource asks the transport to do. Resource methods are generators that yield these and
receive the results, so one method body serves both the sync and the async client."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class GraphQL:
    query: str
    variables: dict[str, Any] = field(default_factory=dict)
    # Files for a GraphQL multipart upload: variable name -> (filename, bytes or file object, content type).
    files: dict[str, tuple[str, Any, str]] | None = None

    @property
    def idempotent(self) -> bool:
        return self.query.lstrip().startswith("query") and not self.files


@dataclass
class Rest:
    method: str
    path: str
    json: Any = None
    params: dict[str, Any] | None = None
    # Return the raw bytes instead of parsed JSON.
    raw: bool = False
    # A raw request body (uploads), sent instead of ``json``, and extra headers.
    content: bytes | None = None
    headers: dict[str, str] | None = None

    @property
    def idempotent(self) -> bool:
        return self.method.upper() in {"GET", "HEAD", "PUT", "DELETE"}


@dataclass
class Stream:
    """A server-sent-events request; the result is an iterator (async iterator for AsyncAdaptive) of
    ``parse(event_json)`` for each ``data:`` event until ``[DONE]``."""

    method: str
    path: str
    json: Any = None
    parse: Callable[[Any], Any] = lambda data: data


@dataclass
class Sleep:
    seconds: float


Request = GraphQL | Rest | Stream | Sleep
