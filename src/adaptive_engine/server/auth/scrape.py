"""Who reads /metrics: admin keys, and a dedicated scrape token (``ADAPTIVE_METRICS_TOKEN``) that opens
nothing else, so a Prometheus server needs no API key. Other keys are refused: request counts per route
and status tell what every tenant does."""

from __future__ import annotations

import hmac
from typing import Any

from adaptive_engine.server.errors import PermissionDenied

METRICS_PATH = "/metrics"


def is_scrape_token(settings: Any, path: str, token: str | None) -> bool:
    """Whether ``token`` is the configured scrape token and the request is for /metrics."""
    expected = settings.metrics_token.get_secret_value() if settings.metrics_token is not None else ""
    if path != METRICS_PATH or not expected or not token:
        return False
    return hmac.compare_digest(token.encode(), expected.encode())


def require_metrics_reader(principal: Any) -> None:
    if not principal.is_admin:
        raise PermissionDenied(
            f"reading {METRICS_PATH} needs an admin API key or the scrape token (ADAPTIVE_METRICS_TOKEN)"
        )
