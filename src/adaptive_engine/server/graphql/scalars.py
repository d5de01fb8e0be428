"""Custom scalars with the wire names the official client declares in its variables."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NewType

import strawberry
from strawberry.scalars import JSON  # noqa: F401 - re-exported: the scalar named "JSON"
from strawberry.types.scalar import ScalarDefinition

from adaptive_engine.server.timestamps import epoch, parse_datetime


def _file(value: Any) -> Any:
    # Strawberry's own Upload scalar lets any value through (a string literal reached a resolver's `read()`).
    if not callable(getattr(value, "read", None)):
        raise ValueError("a file is expected here, sent as a multipart upload")
    return value


# Each scalar is a NewType (what annotations and type checkers see) plus its definition, which the schema
# receives through StrawberryConfig.scalar_map (graphql/schema.py).
Upload = NewType("Upload", bytes)
IdOrKey = NewType("IdOrKey", str)
Timestamp = NewType("Timestamp", datetime)
InputDatetime = NewType("InputDatetime", datetime)

SCALAR_MAP: dict[object, ScalarDefinition] = {
    Upload: strawberry.scalar(
        name="Upload",
        description="A file, sent as a part of a multipart request",
        serialize=lambda v: v,
        parse_value=_file,
    ),
    IdOrKey: strawberry.scalar(
        name="IdOrKey",
        description="A resource's UUID or its key",
        serialize=str,
        parse_value=str,
    ),
    Timestamp: strawberry.scalar(
        name="Timestamp",
        description="Seconds since the Unix epoch (input also accepts milliseconds or ISO-8601)",
        serialize=epoch,
        parse_value=parse_datetime,
    ),
    InputDatetime: strawberry.scalar(
        name="InputDatetime",
        description="A date-time given as ISO-8601 or epoch seconds/milliseconds",
        serialize=lambda v: v.isoformat(),
        parse_value=parse_datetime,
    ),
}
