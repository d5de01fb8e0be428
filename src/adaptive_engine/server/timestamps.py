"""Time values as every layer reads and writes them: aware UTC datetimes inside, epoch seconds on the wire."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """An aware datetime: SQLite drops tzinfo, and a naive datetime read from it is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def epoch(value: datetime | float | None) -> int | None:
    """Seconds since the epoch, as the wire protocol's createdAt fields want (a number passes through as
    whole seconds). SQLite drops tzinfo: a naive datetime is UTC."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        return int(value)
    return int(as_utc(value).timestamp())


def parse_datetime(value: Any) -> datetime:
    """Accept epoch seconds, epoch milliseconds or an ISO-8601 string (naive means UTC)."""
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=UTC)
    if isinstance(value, str):
        text = value.strip()
        try:
            return parse_datetime(float(text))
        except ValueError:
            pass
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise ValueError(f"not a timestamp: {value!r}")
