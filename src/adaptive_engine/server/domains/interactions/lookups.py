"""A short-lived, per-process cache of what every logging request looks up: use cases and feedback
keys by key or id, and a use case's default model.

Only hits are cached (a key registered a moment ago is found at once; "no default model" counts as a hit), for ``ttl`` seconds, so a
renamed or deleted row is seen by every replica within that delay; the write itself is still checked
by the database's foreign keys.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.lookup import find_by_id_or_key


@dataclass(frozen=True)
class Ref:
    """A snapshot of the looked-up row's fields the logging path reads (ORM rows expire with their session)."""

    id: uuid.UUID
    key: str
    kind: str | None = None
    scoring_type: str | None = None


def _ref(row: Any) -> Ref | None:
    if row is None:
        return None
    return Ref(id=row.id, key=row.key, kind=getattr(row, "kind", None), scoring_type=getattr(row, "scoring_type", None))


# Cached "this use case has no default model" (a plain None would read as a miss).
NO_DEFAULT = Ref(id=uuid.UUID(int=0), key="")


class LookupCache:
    def __init__(self, ttl: float = 2.0, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str], tuple[float, Any]] = {}

    def _get(self, kind: str, key: str) -> Any:
        hit = self._entries.get((kind, key))
        if hit is None:
            return None
        at, value = hit
        if time.monotonic() - at > self.ttl:
            self._entries.pop((kind, key), None)
            return None
        return value

    def _put(self, kind: str, key: str, value: Any) -> Any:
        if value is not None:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[(kind, key)] = (time.monotonic(), value)
        return value

    def clear(self) -> None:
        self._entries.clear()

    async def use_case(self, session: AsyncSession, id_or_key: str) -> Ref | None:
        return self._get("use_case", str(id_or_key)) or self._put(
            "use_case", str(id_or_key), _ref(await find_by_id_or_key(session, orm.UseCase, id_or_key))
        )

    async def metric(self, session: AsyncSession, id_or_key: str | uuid.UUID) -> Ref | None:
        return self._get("metric", str(id_or_key)) or self._put(
            "metric", str(id_or_key), _ref(await find_by_id_or_key(session, orm.Metric, id_or_key))
        )

    async def model(self, session: AsyncSession, id_or_key: str) -> Ref | None:
        return self._get("model", str(id_or_key)) or self._put(
            "model", str(id_or_key), _ref(await find_by_id_or_key(session, orm.Model, id_or_key))
        )

    async def default_model(self, session: AsyncSession, use_case_id: uuid.UUID) -> Ref | None:
        cached = self._get("default_model", str(use_case_id))
        if cached is not None:
            return cached if cached is not NO_DEFAULT else None
        row = (
            await session.execute(
                select(orm.ModelService).where(orm.ModelService.use_case_id == use_case_id, orm.ModelService.is_default.is_(True))
            )
        ).scalars().first()
        self._put("default_model", str(use_case_id), _ref(row.model) if row is not None else NO_DEFAULT)
        return _ref(row.model) if row is not None else None
