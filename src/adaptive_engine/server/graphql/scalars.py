"""Custom scalars with the wire names the official client declares in its variables."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, NewType

import strawberry
from strawberry.scalars import JSON  # noqa: F401 - re-exported: the scalar named "JSON"

def _file(value: Any) -> Any:
    # Strawberry's own Upload scalar lets any value through (a string literal reached a resolver's `read()`).
    if not callable(getattr(value, "read", None)):
        raise ValueError("a file is expected here, sent as a multipart upload")
    return value


Upload = strawberry.scalar(
    NewType("Upload", bytes),
    name="Upload",
    description="A file, sent as a part of a multipart request",
    serialize=lambda v: v,
    parse_value=_file,
)

IdOrKey = strawberry.scalar(
    NewType("IdOrKey", str),
    name="IdOrKey",
    description="A resource's UUID or its key",
    serialize=str,
    parse_value=str,
)


def _parse_datetime(value: Any) -> datetime:
    """Accept epoch seconds, epoch milliseconds or an ISO-8601 string."""
    if isinstance(value, (int, float)):
        seconds = value / 1000 if value > 1e11 else value
        return datetime.fromtimestamp(seconds, tz=timezone.utc)
    if isinstance(value, str):
        text = value.strip()
        try:
            return _parse_datetime(float(text))
        except ValueError:
            pass
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise ValueError(f"not a timestamp: {value!r}")


def _serialize_epoch(value: Any) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return int(value.timestamp())
    return int(value)


Timestamp = strawberry.scalar(
    NewType("Timestamp", datetime),
    name="Timestamp",
    description="Seconds since the Unix epoch (input also accepts milliseconds or ISO-8601)",
    serialize=_serialize_epoch,
    parse_value=_parse_datetime,
)

InputDatetime = strawberry.scalar(
    NewType("InputDatetime", datetime),
    name="InputDatetime",
    description="A date-time given as ISO-8601 or epoch seconds/milliseconds",
    serialize=lambda v: v.isoformat(),
    parse_value=_parse_datetime,
)
