"""Custom scalars with the wire names the official client declares in its variables."""

from __future__ import annotations

from datetime import datetime
from typing import NewType

import strawberry
from strawberry.file_uploads import Upload  # noqa: F401 - re-exported: the scalar named "Upload"
from strawberry.scalars import JSON  # noqa: F401 - re-exported: the scalar named "JSON"

from adaptive_engine.server.timestamps import epoch, parse_datetime

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
