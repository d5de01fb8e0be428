"""Hourly roll-ups of traffic, so a time series over millions of interactions reads hundreds of rows.

Every write of completions, failed calls and metric feedback goes through :func:`add` in the same
transaction (``insert_rows``, the graders' verdicts), which folds the batch into one row per (use case,
hour, model) of ``traffic_hourly`` / per (use case, key, hour, model) of ``feedback_hourly`` and adds it
with an upsert: a commit of 2,000 rows costs one more statement, not 2,000.

A series over a time range reads the whole hours inside the range from the roll-ups and the partial hours at
its two edges from the rows themselves (an index range of at most an hour each): :func:`hourly_parts`.
Rows deleted with their use case or feedback key take their roll-ups with them (foreign keys).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from adaptive_engine.server.db.models import (
    Completion,
    Feedback,
    FeedbackHourly,
    InferenceError,
    TrafficHourly,
)
from adaptive_engine.server.db.models.completions import NO_MODEL
from adaptive_engine.server.domains.usage import rollups as usage_rollups
from adaptive_engine.server.timestamps import epoch

HOUR = 3600
TRAFFIC_SUMS = ("interactions", "prompt_tokens", "completion_tokens", "latency_count", "latency_sum_ms", "errors")
FEEDBACK_SUMS = ("count", "total", "total_sq")


def hour_of(value: datetime) -> int:
    return (epoch(value) or 0) // HOUR * HOUR


# Model key of a completion committed earlier, if the caller knows it (None: read it).
KnownModels = Callable[[uuid.UUID], str | None]


@functools.cache
def _traffic_upsert(dialect: str) -> Any:
    """Built once per dialect (with its cache key): building the statement cost more than running it."""
    table: Table = TrafficHourly.__table__  # type: ignore[assignment]
    stmt = _insert(dialect)(table)
    return stmt.on_conflict_do_update(
        index_elements=["use_case_id", "hour", "model_key"],
        set_={
            **{c: table.c[c] + stmt.excluded[c] for c in TRAFFIC_SUMS},
            "latency_max_ms": _greatest(dialect)(table.c.latency_max_ms, stmt.excluded.latency_max_ms),
        },
    )


@functools.cache
def _feedback_upsert(dialect: str) -> Any:
    table: Table = FeedbackHourly.__table__  # type: ignore[assignment]
    stmt = _insert(dialect)(table)
    return stmt.on_conflict_do_update(
        index_elements=["use_case_id", "metric_id", "hour", "model_key"],
        set_={
            **{c: table.c[c] + stmt.excluded[c] for c in FEEDBACK_SUMS},
            "min_value": _least(dialect)(table.c.min_value, stmt.excluded.min_value),
            "max_value": _greatest(dialect)(table.c.max_value, stmt.excluded.max_value),
        },
    )


def _insert(dialect: str) -> Any:
    return pg_insert if dialect == "postgresql" else sqlite_insert


# Of two values: GREATEST / LEAST on PostgreSQL, the scalar max / min on SQLite.
def _greatest(dialect: str) -> Any:
    return func.greatest if dialect == "postgresql" else func.max


def _least(dialect: str) -> Any:
    return func.least if dialect == "postgresql" else func.min


async def add(
    session: AsyncSession, tables: dict[type, list[dict[str, Any]]], known_models: KnownModels | None = None
) -> None:
    """Add the rows about to be inserted (column dicts by table, as ``Rows.tables``) to the roll-ups, in the
    session's transaction."""
    # Core statements on the session's connection: the session's ORM execution layer costs more than they do.
    connection = await session.connection()
    for statement, rows in await statements(connection, tables, known_models):
        await connection.execute(statement, rows)


async def statements(
    connection: AsyncConnection, tables: dict[type, list[dict[str, Any]]], known_models: KnownModels | None = None
) -> list[tuple[Any, list[dict[str, Any]]]]:
    """The roll-up upserts (with their rows) that add the rows about to be inserted (column dicts by table,
    as ``Rows.tables``). ``known_models``: model keys of completions committed earlier (the writer's memory),
    so feedback on them needs no query; the others are read on ``connection``."""
    traffic: dict[tuple[uuid.UUID, int, str], dict[str, float]] = {}

    def cell(row: dict[str, Any]) -> dict[str, float]:
        key = (row["use_case_id"], hour_of(row["created_at"]), row.get("model_key") or NO_MODEL)
        return traffic.setdefault(key, dict.fromkeys((*TRAFFIC_SUMS, "latency_max_ms"), 0))

    for row in tables.get(Completion, ()):
        acc = cell(row)
        acc["interactions"] += 1
        acc["prompt_tokens"] += row.get("prompt_tokens") or 0
        acc["completion_tokens"] += row.get("completion_tokens") or 0
        if row.get("latency_ms") is not None:
            acc["latency_count"] += 1
            acc["latency_sum_ms"] += row["latency_ms"]
            acc["latency_max_ms"] = max(acc["latency_max_ms"], row["latency_ms"])
    for row in tables.get(InferenceError, ()):
        cell(row)["errors"] += 1

    # count, sum, sum of squares, lowest, highest
    feedback: dict[tuple[uuid.UUID, uuid.UUID, int, str], list[float]] = {}
    feedbacks = tables.get(Feedback, ())
    if feedbacks:
        ids = {row["completion_id"] for row in feedbacks}
        models = await _models_of(connection, tables, ids, known_models)
        for row in feedbacks:
            key = (
                row["use_case_id"],
                row["metric_id"],
                hour_of(row["created_at"]),
                models.get(row["completion_id"], NO_MODEL),
            )
            value = float(row["value"])
            stats = feedback.setdefault(key, [0, 0.0, 0.0, value, value])
            stats[0] += 1
            stats[1] += value
            stats[2] += value * value
            stats[3] = min(stats[3], value)
            stats[4] = max(stats[4], value)

    dialect = connection.dialect.name
    out = usage_rollups.statements(tables, dialect)
    # Sorted keys: two transactions adding to the same rows lock them in the same order (no deadlock).
    if traffic:
        out.append(
            (
                _traffic_upsert(dialect),
                [
                    {"use_case_id": u, "hour": h, "model_key": m, **acc}
                    for (u, h, m), acc in sorted(traffic.items(), key=_order)
                ],
            )
        )
    if feedback:
        out.append(
            (
                _feedback_upsert(dialect),
                [
                    {
                        "use_case_id": u,
                        "metric_id": k,
                        "hour": h,
                        "model_key": m,
                        "count": n,
                        "total": s,
                        "total_sq": sq,
                        "min_value": lo,
                        "max_value": hi,
                    }
                    for (u, k, h, m), (n, s, sq, lo, hi) in sorted(feedback.items(), key=_order)
                ],
            )
        )
    return out


def _order(item: tuple[tuple[Any, ...], Any]) -> tuple[str, ...]:
    return tuple(str(part) for part in item[0])


async def _models_of(
    connection: AsyncConnection,
    tables: dict[type, list[dict[str, Any]]],
    completion_ids: set[uuid.UUID],
    known_models: KnownModels | None,
) -> dict[uuid.UUID, str]:
    """Model key of each completion: from the batch itself (feedback logged with its interaction), from
    ``known_models``, else read."""
    found = {
        row["id"]: row.get("model_key") or NO_MODEL for row in tables.get(Completion, ()) if row["id"] in completion_ids
    }
    rest = []
    for i in completion_ids:
        if i in found:
            continue
        known = known_models(i) if known_models is not None else None
        if known is None:
            rest.append(i)
        else:
            found[i] = known
    for start in range(0, len(rest), 500):
        chunk = rest[start : start + 500]
        query = select(Completion.id, Completion.model_key).where(Completion.id.in_(chunk))
        found.update({i: m or NO_MODEL for i, m in (await connection.execute(query)).all()})
    return found


# --------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Span:
    """Part of a time range: rows with ``since <= created_at < until`` (``until`` included when ``closed``)."""

    since: datetime | None
    until: datetime
    closed: bool = False

    def conditions(self, column: Any) -> list[Any]:
        out = [column <= self.until if self.closed else column < self.until]
        if self.since is not None:
            out.append(column >= self.since)
        return out


@dataclass(frozen=True)
class Parts:
    """A time range split into the edges read from rows (``raw``) and the whole hours read from roll-ups
    (``first_hour <= hour < end_hour``; ``first_hour`` None: from the first one)."""

    raw: tuple[Span, ...]
    first_hour: int | None
    end_hour: int | None


def hourly_parts(since: datetime | None, until: datetime) -> Parts:
    """Split ``since <= created_at <= until``: whole hours from the roll-ups, the rest from the rows."""
    last = hour_of(until)  # the hour holding `until` is partial (or ends exactly at it: still read from rows)
    if since is None:
        return Parts(raw=(Span(_at(last), until, closed=True),), first_hour=None, end_hour=last)
    first = -(-(epoch(since) or 0) // HOUR) * HOUR  # the first whole hour starts at or after `since`
    if first >= last:
        return Parts(raw=(Span(since, until, closed=True),), first_hour=None, end_hour=None)
    raw = (Span(since, _at(first)), Span(_at(last), until, closed=True))
    return Parts(
        raw=tuple(s for s in raw if s.since is None or s.since < s.until or s.closed), first_hour=first, end_hour=last
    )


def _at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


def hour_conditions(column: Any, parts: Parts) -> list[Any] | None:
    """Conditions on a roll-up's ``hour`` column for the whole hours of ``parts``; None when there are none."""
    if parts.end_hour is None:
        return None
    out = [column < parts.end_hour]
    if parts.first_hour is not None:
        out.append(column >= parts.first_hour)
    return out


async def gather(
    parts: Parts,
    raw: Callable[[Span], Awaitable[Iterable[Any]]],
    rolled: Callable[[list[Any]], Awaitable[Iterable[Any]]],
    hour_column: Any,
) -> list[Any]:
    """The rows of every raw edge and of the roll-ups, as the two callables select them."""
    out: list[Any] = []
    for span in parts.raw:
        out.extend(await raw(span))
    conditions = hour_conditions(hour_column, parts)
    if conditions is not None:
        out.extend(await rolled(conditions))
    return out
