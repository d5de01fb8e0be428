"""A model's gateway settings: upstream timeouts, retries, fallbacks and default request fields.

Stored on the model row (``source["gateway"]``, set with the GraphQL mutation ``updateModelGatewayConfig``);
the inference manager hands them to the backend it builds. Unset values take the server's defaults
(``ADAPTIVE_EXTERNAL_*`` settings).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Request fields a model's defaults may not set: the gateway's own, and what makes the request itself.
NOT_DEFAULTS = frozenset(
    {"model", "messages", "prompt", "stream", "stream_options", "session_id", "labels", "ab_campaign", "store"}
)
MAX_FALLBACKS = 5
MAX_RETRIES = 10
MAX_TIMEOUT_S = 3600.0


@dataclass(frozen=True)
class GatewayConfig:
    connect_timeout_s: float | None = None  # opening the connection (TCP and TLS)
    first_byte_timeout_s: float | None = None  # the answer's head, and each later wait for more of it
    total_timeout_s: float | None = None  # the whole upstream call: retries and a whole stream included
    max_retries: int | None = None  # more attempts after a connection error, 429 or 5xx
    fallbacks: tuple[str, ...] = ()  # model keys tried in order when this model fails before answering
    defaults: dict[str, Any] = field(default_factory=dict)  # request fields sent when the caller gives none

    @classmethod
    def of(cls, source: dict[str, Any] | None) -> GatewayConfig:
        data = (source or {}).get("gateway") or {}
        return cls(
            connect_timeout_s=data.get("connect_timeout_s"),
            first_byte_timeout_s=data.get("first_byte_timeout_s"),
            total_timeout_s=data.get("total_timeout_s"),
            max_retries=data.get("max_retries"),
            fallbacks=tuple(data.get("fallbacks") or ()),
            defaults=dict(data.get("defaults") or {}),
        )

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            k: v
            for k, v in (
                ("connect_timeout_s", self.connect_timeout_s),
                ("first_byte_timeout_s", self.first_byte_timeout_s),
                ("total_timeout_s", self.total_timeout_s),
                ("max_retries", self.max_retries),
            )
            if v is not None
        }
        if self.fallbacks:
            out["fallbacks"] = list(self.fallbacks)
        if self.defaults:
            out["defaults"] = dict(self.defaults)
        return out
