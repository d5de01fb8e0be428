"""Usage roll-ups: requests, tokens, errors, latency histogram and cost per MINUTE, HOUR and DAY bucket ×
use case × model × API key × user.

Every batch of completions and failed calls the ingest writer inserts (and of calls served without being
stored, :class:`UnstoredCall`) takes the upsert :func:`statements` gives, in the same transaction (through
interactions/rollups.py): each batch becomes one upsert of one row per cell and period, so a commit of 2,000
rows costs one more statement, and the roll-ups are exactly as durable as the rows. Latency is kept as counts
per fixed bucket (LATENCY_BOUNDS_MS): buckets merge by addition, so p50 and p95 can be read for any set of
rows and any range.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.db.models import Completion, InferenceError, UsageRollup
from adaptive_engine.server.db.models.completions import NO_MODEL
from adaptive_engine.server.db.models.usage import LATENCY_BOUNDS_MS, LATENCY_COLUMNS, NOBODY
from adaptive_engine.server.db.session import rowcount
from adaptive_engine.server.timestamps import epoch

PERIODS = {"MINUTE": 60, "HOUR": 3600, "DAY": 86400}
# Minute rows are many (one per minute and cell): housekeeping removes them after this; hours and days stay.
MINUTE_RETENTION = timedelta(hours=48)
SUMS = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "errors",
    "cost",
    "latency_count",
    "latency_sum_ms",
    *LATENCY_COLUMNS,
)
Cell = tuple[str, int, uuid.UUID, str, uuid.UUID, uuid.UUID]


class UnstoredCall:
    """The key, in an ingest batch's tables, of served calls that are not stored (``store: false``, embeddings):
    they add to the roll-ups (requests, tokens, cost, latency) and so to the budgets, and are inserted nowhere."""


def latency_column(latency_ms: float) -> str:
    for i, bound in enumerate(LATENCY_BOUNDS_MS):
        if latency_ms <= bound:
            return LATENCY_COLUMNS[i]
    return LATENCY_COLUMNS[-1]


def fold(tables: dict[type, list[dict[str, Any]]]) -> dict[Cell, dict[str, float]]:
    """The batch's sums per roll-up row (every period)."""
    cells: dict[Cell, dict[str, float]] = {}

    def cells_of(row: dict[str, Any]) -> Iterable[dict[str, float]]:
        at = epoch(row["created_at"]) or 0
        rest = (
            row["use_case_id"],
            row.get("model_key") or NO_MODEL,
            row.get("api_key_id") or NOBODY,
            row.get("user_id") or NOBODY,
        )
        for period, size in PERIODS.items():
            yield cells.setdefault((period, at // size * size, *rest), dict.fromkeys(SUMS, 0))

    for row in (*tables.get(Completion, ()), *tables.get(UnstoredCall, ())):
        latency = row.get("latency_ms")
        for acc in cells_of(row):
            acc["requests"] += 1
            acc["prompt_tokens"] += row.get("prompt_tokens") or 0
            acc["completion_tokens"] += row.get("completion_tokens") or 0
            acc["cost"] += row.get("cost") or 0.0
            if latency is not None:
                acc["latency_count"] += 1
                acc["latency_sum_ms"] += latency
                acc[latency_column(latency)] += 1
    for row in tables.get(InferenceError, ()):
        for acc in cells_of(row):
            acc["errors"] += 1
    return cells


KEY_COLUMNS = ("period", "bucket", "use_case_id", "model_key", "api_key_id", "user_id")


@functools.cache
def upsert(dialect: str) -> Any:
    """The roll-up upsert of ``dialect``, built once: building it (the EXCLUDED alias of 30 columns) and its
    cache key cost more than running it. On the table, not the mapped class: the ORM's bulk layer costs more."""
    table: Table = UsageRollup.__table__  # type: ignore[assignment]
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(table)
    return stmt.on_conflict_do_update(
        index_elements=list(KEY_COLUMNS), set_={c: table.c[c] + stmt.excluded[c] for c in SUMS}
    )


def statements(tables: dict[type, list[dict[str, Any]]], dialect: str) -> list[tuple[Any, list[dict[str, Any]]]]:
    """The upsert of the batch's sums, with its rows (none for a batch with nothing to count)."""
    cells = fold(tables)
    if not cells:
        return []
    # Sorted: two transactions adding to the same rows lock them in the same order (no deadlock).
    return [
        (
            upsert(dialect),
            [
                {**dict(zip(KEY_COLUMNS, cell, strict=True)), **acc}
                for cell, acc in sorted(cells.items(), key=lambda item: tuple(map(str, item[0])))
            ],
        )
    ]


async def prune_minutes(session: AsyncSession, now: datetime) -> int:
    """Remove minute rows older than MINUTE_RETENTION, an hour of them at most (the oldest): a pass stays a
    short transaction, and passes every few minutes still outrun a day's backlog (housekeeping)."""
    cutoff = (epoch(now - MINUTE_RETENTION) or 0) // 60 * 60
    oldest = (
        await session.execute(select(func.min(UsageRollup.bucket)).where(UsageRollup.period == "MINUTE"))
    ).scalar()
    if oldest is None or oldest >= cutoff:
        return 0
    upto = min(cutoff, oldest + 3600)
    result = await session.execute(
        delete(UsageRollup)
        .where(UsageRollup.period == "MINUTE", UsageRollup.bucket < upto)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result)


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) of a latency histogram, interpolated inside its bucket (None: no latency)."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= rank:
            low = LATENCY_BOUNDS_MS[i - 1] if i > 0 else 0
            if i == len(LATENCY_BOUNDS_MS):  # above the last bound: nothing to interpolate towards
                return float(low)
            high = LATENCY_BOUNDS_MS[i]
            return low + (high - low) * (rank - seen) / count
        seen += count
    return float(LATENCY_BOUNDS_MS[-1])
