"""A short-lived, per-process cache of the registry rows every data-plane request looks up: use cases,
feedback keys and models by id or key, and a use case's attached models.

Logging and inference requests name these by key on every call; reading them from the database each
time would cost more than the rest of the request. Entries are plain snapshots (ORM rows expire with
their session) and live ``ttl`` seconds at most. Any commit of this process to one of the cached tables
drops them all at once (see :mod:`adaptive_engine.server.db.changes`; such writes are rare admin actions),
so a request always sees what an earlier request of the same process committed; other replicas see a
change within ``ttl``. Only hits are cached (a row created a moment ago is found at once); the writes
that follow are still checked by the database's foreign keys.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.db import changes
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.lookup import find_by_id_or_key
from adaptive_engine.server.singleflight import SingleFlight

WATCHED = (orm.UseCase, orm.Metric, orm.Model, orm.ModelService)


@dataclass(frozen=True)
class Ref:
    """The fields of a looked-up row that hot paths read (``kind``: a key's or a model's kind)."""

    id: uuid.UUID
    key: str
    kind: str | None = None
    scoring_type: str | None = None
    status: str | None = None
    error: str | None = None
    # A model's gateway settings (source["gateway"]) as canonical JSON: a serving process compares it with
    # its backend's to notice a change made elsewhere.
    gateway: str | None = None
    # A use case's archive flag: archived use cases take no new traffic.
    archived: bool = False
    # A model's prices (input, output, cached input) in dollars per million tokens.
    prices: tuple[float, float, float] = (0.0, 0.0, 0.0)


@dataclass(frozen=True)
class Attachment:
    """A model attached to a use case (a ``model_services`` row with its model)."""

    model: Ref
    is_default: bool
    desired_online: bool
    # The service's system prompt template, applied to chat requests that bring no system message.
    system_prompt_template_id: uuid.UUID | None = None


def ref_of(row: Any) -> Ref | None:
    return None if row is None else ref_to(row)


def ref_to(row: Any) -> Ref:
    """The Ref of a row that exists (a non-null relationship)."""
    source = getattr(row, "source", None)
    gateway = source.get("gateway") if isinstance(source, dict) else None
    return Ref(
        id=row.id,
        key=row.key,
        kind=getattr(row, "kind", None),
        scoring_type=getattr(row, "scoring_type", None),
        status=getattr(row, "status", None),
        error=getattr(row, "error", None),
        gateway=gateway_text(gateway),
        archived=bool(getattr(row, "is_archived", False)),
        prices=(
            getattr(row, "price_input", 0.0) or 0.0,
            getattr(row, "price_output", 0.0) or 0.0,
            getattr(row, "price_cached_input", 0.0) or 0.0,
        ),
    )


def gateway_text(gateway: Any) -> str | None:
    return json.dumps(gateway, sort_keys=True, separators=(",", ":")) if gateway else None


class RefCache:
    def __init__(self, ttl: float = 2.0, max_entries: int = 10_000) -> None:
        changes.install()
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[tuple[str, str], tuple[float, Any]] = {}
        self._generation = changes.generation(WATCHED)
        self._flights = SingleFlight()

    def _get(self, session: AsyncSession, kind: str, key: str) -> Any:
        generation = changes.generation(WATCHED)
        if generation != self._generation:
            self._entries.clear()
            self._generation = generation
        if changes.pending(session, WATCHED):
            return None  # this request changed the registry: read it, not the cache
        hit = self._entries.get((kind, key))
        if hit is None:
            return None
        at, value = hit
        if time.monotonic() - at > self.ttl:
            self._entries.pop((kind, key), None)
            return None
        return value

    def _put(self, session: AsyncSession, generation: int, kind: str, key: str, value: Any) -> Any:
        # Not cached when a commit happened while it was read, or when it reflects this request's own writes.
        if value is not None and generation == changes.generation(WATCHED) and not changes.pending(session, WATCHED):
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[(kind, key)] = (time.monotonic(), value)
        return value

    async def _read(self, session: AsyncSession, kind: str, key: str, query: Callable[[], Awaitable[Any]]) -> Any:
        cached = self._get(session, kind, key)
        if cached is not None:
            return cached

        async def load() -> Any:
            generation = changes.generation(WATCHED)
            return self._put(session, generation, kind, key, await query())

        if changes.pending(session, WATCHED):
            return await load()
        return await self._flights.run((kind, key), load)

    async def _lookup(self, session: AsyncSession, table: type, kind: str, id_or_key: str | uuid.UUID) -> Ref | None:
        key = str(id_or_key)

        async def query() -> Ref | None:
            return ref_of(await find_by_id_or_key(session, table, key))

        return await self._read(session, kind, key, query)

    def clear(self) -> None:
        self._entries.clear()

    async def use_case(self, session: AsyncSession, id_or_key: str | uuid.UUID) -> Ref | None:
        return await self._lookup(session, orm.UseCase, "use_case", id_or_key)

    async def metric(self, session: AsyncSession, id_or_key: str | uuid.UUID) -> Ref | None:
        return await self._lookup(session, orm.Metric, "metric", id_or_key)

    async def model(self, session: AsyncSession, id_or_key: str | uuid.UUID) -> Ref | None:
        return await self._lookup(session, orm.Model, "model", id_or_key)

    async def attachments(self, session: AsyncSession, use_case_id: uuid.UUID) -> tuple[Attachment, ...]:
        """The use case's attached models, oldest attachment first."""

        async def query() -> tuple[Attachment, ...]:
            services = (
                (
                    await session.execute(
                        select(orm.ModelService)
                        .where(orm.ModelService.use_case_id == use_case_id)
                        .order_by(orm.ModelService.created_at)
                    )
                )
                .scalars()
                .all()
            )
            return tuple(
                Attachment(ref_to(s.model), s.is_default, s.desired_online, s.system_prompt_template_id)
                for s in services
            )

        return await self._read(session, "attachments", str(use_case_id), query)

    async def use_cases_of_model(
        self, session: AsyncSession, model_id: uuid.UUID
    ) -> tuple[tuple[Ref, Attachment], ...]:
        """The use cases a model is attached to, with the attachment (oldest first): a bare model name on
        the data plane is resolved through them."""

        async def query() -> tuple[tuple[Ref, Attachment], ...]:
            rows = (
                await session.execute(
                    select(orm.ModelService, orm.UseCase)
                    .join(orm.UseCase, orm.UseCase.id == orm.ModelService.use_case_id)
                    .where(orm.ModelService.model_id == model_id)
                    .order_by(orm.ModelService.created_at)
                )
            ).all()
            return tuple(
                (ref_to(uc), Attachment(ref_to(s.model), s.is_default, s.desired_online, s.system_prompt_template_id))
                for s, uc in rows
            )

        return await self._read(session, "model_use_cases", str(model_id), query)

    async def default_model(self, session: AsyncSession, use_case_id: uuid.UUID) -> Ref | None:
        attached = await self.attachments(session, use_case_id)
        return next((a.model for a in attached if a.is_default), None)
