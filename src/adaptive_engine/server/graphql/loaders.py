"""Per-request batch loading: the nested fields of a list's items load together, in a fixed number of queries.

GraphQL resolves the items of a list side by side. A nested field that ran its own query per item made a
list of N items cost N queries per field; through ``ctx.loaders`` each item asks for its key and one strawberry
``DataLoader`` per kind of lookup gathers the keys asked in the same turn of the event loop and runs one
query for all of them.

A kind of lookup is a :class:`Batch` declared once, next to the domain that owns it::

    METRICS_OF_USE_CASE = children(lambda ids: select(UseCaseMetric.use_case_id, Metric).join(...)
                                   .where(UseCaseMetric.use_case_id.in_(ids)).order_by(Metric.key))
    metrics = await info.context.loaders.load(METRICS_OF_USE_CASE, use_case.id)
    model = await info.context.loaders.load(row(Model.id), model_id)          # a row by a column, or None

The loaders batch but never cache (``cache=False``): every load reads the database as the query it replaces
would, so what a mutation earlier in the same request changed is always seen.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, select
from strawberry.dataloader import DataLoader

from adaptive_engine.server.auth.principal import allows

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Keys per query: IN lists stay well under SQLite's limit on bound parameters.
MAX_BATCH = 500


@dataclass(frozen=True, eq=False)
class Batch(Generic[K, V]):
    """How to load many keys at once: ``fetch(ctx, keys)`` answers {key: value} (``ctx``: the request's
    GraphQL Context; keys come without duplicates); a key it leaves out gets ``missing()``."""

    fetch: Callable[[Any, list[K]], Awaitable[Mapping[K, V]]]
    missing: Callable[[], V] = field(default=lambda: None)  # type: ignore[assignment]


def children(query: Callable[[list[Any]], Select[Any, Any]]) -> Batch[Any, list[Any]]:
    """The rows of each parent: ``query(parent_ids)`` selects ``(parent_id, row)`` pairs, in the order each
    parent's list should have."""

    async def fetch(ctx: Any, keys: list[Any]) -> dict[Any, list[Any]]:
        out: dict[Any, list[Any]] = {}
        for parent, item in (await ctx.session.execute(query(keys))).unique().all():
            out.setdefault(parent, []).append(item)
        return out

    return Batch(fetch, missing=list)


@functools.cache
def row(column: Any) -> Batch[Any, Any]:
    """The row whose ``column`` (its id, or another unique column) has the key; None when there is none."""
    entity = column.class_

    async def fetch(ctx: Any, keys: list[Any]) -> dict[Any, Any]:
        rows = (await ctx.session.execute(select(entity).where(column.in_(keys)))).unique().scalars()
        return {getattr(r, column.key): r for r in rows}

    return Batch(fetch)


async def _grants(ctx: Any, use_case_ids: list[uuid.UUID]) -> dict[uuid.UUID, frozenset[str]]:
    return await ctx.principal.use_case_permissions_many(ctx.session, use_case_ids)


# The caller's permissions on each use case, decided by Principal (the one place that decides them).
USE_CASE_PERMISSIONS: Batch[uuid.UUID, frozenset[str]] = Batch(_grants, missing=frozenset)


class Loaders:
    """The request's loaders, one per Batch, made on first use (``Context.loaders``)."""

    def __init__(self, ctx: Any) -> None:
        self._ctx = ctx
        self._loaders: dict[Batch[Any, Any], DataLoader[Any, Any]] = {}

    def load(self, batch: Batch[K, V], key: K) -> Awaitable[V]:
        loader = self._loaders.get(batch)
        if loader is None:
            loader = self._loaders[batch] = DataLoader(
                functools.partial(self._run, batch), cache=False, max_batch_size=MAX_BATCH
            )
        return loader.load(key)

    async def load_many(self, batch: Batch[K, V], keys: Sequence[K]) -> list[V]:
        # Every key joins the same batch: the loads are all asked before the first await.
        return list(await asyncio.gather(*(self.load(batch, k) for k in keys)))

    async def can(self, permission: str, use_case_id: uuid.UUID) -> bool:
        """``Principal.can``, batched with the other items of the list."""
        return allows(await self.load(USE_CASE_PERMISSIONS, use_case_id), permission)

    async def readable(self, use_cases: Sequence[Any]) -> list[Any]:
        """The use cases (rows with an ``id``) the caller may read, in order, checked together."""
        allowed = await asyncio.gather(*(self.can("use_case:read", u.id) for u in use_cases))
        return [u for u, ok in zip(use_cases, allowed, strict=True) if ok]

    async def _run(self, batch: Batch[K, V], keys: list[K]) -> list[V]:
        found = await batch.fetch(self._ctx, list(dict.fromkeys(keys)))
        return [found[k] if k in found else batch.missing() for k in keys]


def lookup(
    fetch: Callable[[Any, list[Any]], Awaitable[Mapping[Any, Any]]], missing: Callable[[], Any] = lambda: None
) -> Batch[Any, Any]:
    """A domain's bulk lookup as a Batch: ``fetch(session, keys)`` answers {key: value} from the request's
    session (the GraphQL modules reach the database only through their services)."""

    async def fetch_in(ctx: Any, keys: list[Any]) -> Mapping[Any, Any]:
        return await fetch(ctx.session, keys)

    return Batch(fetch_in, missing)
