"""Custom scalars with the wire names the official client declares in its variables."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NewType

import strawberry
from strawberry.scalars import JSON  # noqa: F401 - re-exported: the scalar named "JSON"

from adaptive_engine.server.timestamps import epoch, parse_datetime


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


Timestamp = strawberry.scalar(
    NewType("Timestamp", datetime),
    name="Timestamp",
    description="Seconds since the Unix epoch (input also accepts milliseconds or ISO-8601)",
    serialize=epoch,
    parse_value=parse_datetime,
)

InputDatetime = strawberry.scalar(
    NewType("InputDatetime", datetime),
    name="InputDatetime",
    description="A date-time given as ISO-8601 or epoch seconds/milliseconds",
    serialize=lambda v: v.isoformat(),
    parse_value=parse_datetime,
)
