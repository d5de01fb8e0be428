"""Time buckets for time series, in SQL that SQLite and PostgreSQL both run.

The database groups rows by a fixed-length bucket (hour, day or Monday-started week, UTC) given as epoch
seconds; months, quarters, years and millennia are calendar buckets of unequal length, so the database
groups by day and :func:`calendar_start` folds the days (a few hundred rows at most) here.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Integer, cast, func

from adaptive_engine.server.errors import InvalidInput

FIXED = {"HOUR": 3600, "DAY": 86400, "WEEK": 7 * 86400}
CALENDAR = ("MONTH", "QUARTER", "YEAR", "MILLENNIUM")
# 1970-01-05, the first Monday after the epoch: weeks start on Mondays (ISO 8601).
WEEK_ORIGIN = 4 * 86400
# A series longer than this is refused: it would not fit any chart, and a wrong interval is the likely cause.
MAX_BUCKETS = 5000


def epoch_seconds(column: Any, dialect: str) -> Any:
    """Whole seconds since the epoch of a timestamp column (stored as UTC on both databases)."""
    if dialect == "postgresql":
        return cast(func.floor(func.extract("epoch", column)), BigInteger)
    return cast(func.strftime("%s", column), Integer)


def sql_bucket(column: Any, dialect: str, interval: str) -> Any:
    """The start (epoch seconds) of the bucket the database groups by: the interval's for fixed ones, the
    day's for calendar ones (fold with :func:`calendar_start`)."""
    return seconds_bucket(epoch_seconds(column, dialect), interval)


def seconds_bucket(seconds: Any, interval: str) -> Any:
    """:func:`sql_bucket` of an integer column (or expression) of epoch seconds, e.g. a roll-up's hour."""
    size = FIXED.get(interval, FIXED["DAY"])
    origin = WEEK_ORIGIN if interval == "WEEK" else 0
    return ((seconds - origin) // size) * size + origin


def calendar_start(seconds: int, interval: str) -> int:
    """The start of the calendar bucket (UTC) holding ``seconds``; fixed intervals are returned unchanged."""
    if interval not in CALENDAR:
        return seconds
    day = datetime.fromtimestamp(seconds, tz=UTC)
    if interval == "MONTH":
        start = day.replace(day=1)
    elif interval == "QUARTER":
        start = day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    elif interval == "YEAR":
        start = day.replace(month=1, day=1)
    else:
        start = day.replace(year=max(1, day.year // 1000 * 1000), month=1, day=1)
    return int(start.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())


def _next(start: int, interval: str) -> int:
    if interval in FIXED:
        return start + FIXED[interval]
    day = datetime.fromtimestamp(start, tz=UTC)
    months = {"MONTH": 1, "QUARTER": 3, "YEAR": 12, "MILLENNIUM": 12000}[interval]
    month = day.month - 1 + months
    return int(day.replace(year=day.year + month // 12, month=month % 12 + 1).timestamp())


def bucket_starts(since: datetime, until: datetime, interval: str) -> list[int]:
    """Every bucket from the one holding ``since`` to the one holding ``until``: a chart shows empty ones too."""
    first = int(since.timestamp())
    if interval in FIXED:
        origin = WEEK_ORIGIN if interval == "WEEK" else 0
        first = (first - origin) // FIXED[interval] * FIXED[interval] + origin
    else:
        first = calendar_start(first, interval)
    last = int(until.timestamp())
    out = []
    start = first
    while start <= last:
        out.append(start)
        if len(out) > MAX_BUCKETS:
            raise InvalidInput(
                f"more than {MAX_BUCKETS} {interval.lower()} buckets in that time range: pick a longer interval"
            )
        start = _next(start, interval)
    return out
