"""Group commit for production traffic: completions, feedback, comparisons and outcomes.

Requests validate their input on their own (read-only) session, then hand ready rows to the one
``IngestWriter`` of the process. The writer takes every batch waiting in its queue, inserts them all in
one transaction and commits once; each request awaits the future of its batch, so a 2xx is only sent
after its rows are durable. While one commit runs, the next requests queue up, so the batch size grows
with the load and the number of commits per second stays what the database can do.

If a grouped transaction fails (say a completion was deleted between validation and insert), the
batches are retried one by one, so only the offending request fails and nothing of it is written.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Insert, Table, insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from adaptive_engine.server.db import changes, direct
from adaptive_engine.server.db.base import Base, new_id
from adaptive_engine.server.db.models import (
    Comparison,
    Completion,
    Feedback,
    InferenceError,
    Outcome,
    UseCaseMetric,
)
from adaptive_engine.server.db.models.completions import NO_MODEL
from adaptive_engine.server.db.refs import RefCache
from adaptive_engine.server.domains.interactions import rollups
from adaptive_engine.server.errors import Conflict, DomainError, Internal, Unavailable
from adaptive_engine.server.observability.metrics import LiveReadings, Metrics, Reading
from adaptive_engine.server.timestamps import utcnow

log = logging.getLogger("adaptive_engine.ingest")

# Parents before children, so foreign keys hold inside one transaction.
TABLE_ORDER = (Completion, Feedback, Comparison, Outcome, InferenceError)
MAX_BATCHES_PER_COMMIT = 2000


class RecentCompletions:
    """Use case and model key of each completion this process committed lately (bounded, oldest dropped
    first), so the feedback that usually follows an answer needs no query to find them. A completion's use
    case and model never change; one deleted since is caught by the feedback row's foreign key.

    Entries hold only ints and strings (a completion id as its 128-bit int, the use case as an index into
    the few use cases seen): the garbage collector stops tracking such tuples at once. Holding the UUIDs
    themselves, a full memory was 300,000 tracked objects: each full pass of the collector walked them all,
    and their growth set off more of those passes under logging load (bench/ingest_gc.py)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self.capacity = capacity
        self._owners: OrderedDict[int, tuple[int, str]] = OrderedDict()
        self._use_cases: list[uuid.UUID] = []
        self._use_case_index: dict[uuid.UUID, int] = {}

    def add(self, rows: Rows) -> None:
        for row in rows.tables.get(Completion, ()):
            use_case_id = row["use_case_id"]
            index = self._use_case_index.get(use_case_id)
            if index is None:
                index = self._use_case_index[use_case_id] = len(self._use_cases)
                self._use_cases.append(use_case_id)
            self._owners[row["id"].int] = (index, row.get("model_key") or NO_MODEL)
        while len(self._owners) > self.capacity:
            self._owners.popitem(last=False)

    def get(self, completion_id: uuid.UUID) -> uuid.UUID | None:
        """The completion's use case."""
        found = self._owners.get(completion_id.int)
        return self._use_cases[found[0]] if found is not None else None

    def model_key(self, completion_id: uuid.UUID) -> str | None:
        found = self._owners.get(completion_id.int)
        return found[1] if found is not None else None


class KnownLinks:
    """(use case, feedback key) links this process committed lately: a batch with feedback on an already
    linked key skips its "link if missing" statement (one of the three of a typical commit). Forgotten
    after ``ttl`` seconds, and at once when this process commits a change to the links (an unlink);
    another process's unlink is seen once the entry expires."""

    def __init__(self, ttl: float = 2.0) -> None:
        changes.install()
        self.ttl = ttl
        self._at: dict[tuple[uuid.UUID, uuid.UUID], float] = {}
        self._generation = changes.generation((UseCaseMetric,))

    def missing(self, links: set[tuple[uuid.UUID, uuid.UUID]]) -> set[tuple[uuid.UUID, uuid.UUID]]:
        generation = changes.generation((UseCaseMetric,))
        if generation != self._generation:
            self._at.clear()
            self._generation = generation
        now = time.monotonic()
        return {link for link in links if now - self._at.get(link, -self.ttl) >= self.ttl}

    def committed(self, links: Iterable[tuple[uuid.UUID, uuid.UUID]], before: int, linked: bool) -> None:
        """``links`` are committed; ``before`` was the links' generation when the write began, and the
        write's own "link if missing" statement (``linked``) counts as one change of its own."""
        now_generation = changes.generation((UseCaseMetric,))
        if now_generation != before + (1 if linked else 0):
            self._at.clear()  # someone else changed the links meanwhile: remember nothing
            self._generation = now_generation
            return
        self._generation = now_generation
        now = time.monotonic()
        if len(self._at) > 100_000:
            self._at.clear()
        for link in links:
            self._at[link] = now


@dataclass
class Rows:
    """Rows to insert together, as column dicts keyed by table (ids and timestamps filled in)."""

    tables: dict[type, list[dict[str, Any]]] = field(default_factory=dict)
    # (use_case_id, metric_id) pairs that must be linked (feedback on a key links it to the use case).
    links: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)

    def add(self, table: type, row: dict[str, Any]) -> dict[str, Any]:
        if "id" not in row:
            row["id"] = new_id()
        if "created_at" not in row:
            row["created_at"] = utcnow()
        self.tables.setdefault(table, []).append(row)
        return row

    def extend(self, other: Rows) -> None:
        for table, rows in other.tables.items():
            self.tables.setdefault(table, []).extend(rows)
        self.links |= other.links

    def count(self) -> int:
        return sum(len(rows) for rows in self.tables.values())


@functools.cache
def _insert(table: type[Base]) -> Insert:
    """One Core INSERT per table, built once (its cache key with it). It names the Table, not the class: the
    ORM's bulk-insert layer costs more than the insert."""
    return insert(cast(Table, table.__table__))


async def planned_writes(
    connection: AsyncConnection, tables: dict[type, list[dict[str, Any]]], known_models: rollups.KnownModels | None
) -> list[tuple[Any, list[dict[str, Any]]]]:
    """What inserting ``tables`` (``Rows.tables``) writes: each table's insert, parents first, then the
    roll-up upserts, as (statement, rows) pairs. Model keys of feedback's completions that ``known_models``
    does not know are read on ``connection``."""
    work: list[tuple[Any, list[dict[str, Any]]]] = [
        (_insert(table), tables[table]) for table in TABLE_ORDER if tables.get(table)
    ]
    work.extend(await rollups.statements(connection, tables, known_models))
    return work


async def insert_rows(session: AsyncSession, rows: Rows, known_models: rollups.KnownModels | None = None) -> None:
    """Insert ``rows`` in the session's transaction (no commit), through SQLAlchemy: the write path of
    traffic that commits with other work (the writer's own commits go through db/direct.py).
    ``known_models``: model keys of completions committed earlier (see ``rollups.statements``)."""
    if session.new or session.dirty or session.deleted:
        await session.flush()  # rows below may refer to objects the caller added (Core statements do not flush)
    # Core statements on the session's connection: the session's ORM execution layer costs more than they do.
    # They are not seen by db/changes.py, which no cache needs for these tables; the links below are.
    connection = await session.connection()
    for statement, batch in await planned_writes(connection, rows.tables, known_models):
        for group in direct.key_groups(batch).values():  # Core executemany too wants one key set per call
            await connection.execute(statement, group)
    if rows.links:
        # Through the session: KnownLinks (and any cache of the links) watches this table's commits.
        await session.execute(_link_insert(connection.dialect.name), _link_rows(rows.links))


@functools.cache
def _link_insert(dialect: str) -> Insert:
    """Link a feedback key to a use case unless it is linked."""
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    return make(cast(Table, UseCaseMetric.__table__)).on_conflict_do_nothing()


def _link_rows(links: Iterable[tuple[uuid.UUID, uuid.UUID]]) -> list[dict[str, Any]]:
    now = utcnow()
    return [{"use_case_id": u, "metric_id": m, "created_at": now} for u, m in sorted(links)]


@dataclass
class _Pending:
    rows: Rows
    future: asyncio.Future[None]
    seq: int = 0
    queued_at: float = 0.0  # perf_counter


class IngestWriter:
    """The background writer of logged interactions and feedback (one of ``Platform.services``)."""

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], lookups: RefCache, metrics: Metrics | None = None
    ) -> None:
        # Its commits take a connection of the sessions' engine (no session: see db/direct.py).
        self._engine: AsyncEngine = sessionmaker.kw["bind"]
        self._connection: AsyncConnection | None = None  # kept between commits: see _commit_connection
        self.metrics = metrics or Metrics()
        self.metrics.watch(LiveReadings(self._readings))
        self._queue: asyncio.Queue[_Pending | None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.commits = 0
        self.batches = 0
        # Sequence numbers: the last batch queued, the last one written (or failed); waiters for barrier().
        self._queued_seq = 0
        self._done_seq = 0
        self._barriers: list[tuple[int, asyncio.Future[None]]] = []
        # What every logging request looks up (use cases, feedback keys, default models), cached briefly:
        # the app's shared cache.
        self.lookups = lookups
        self.recent_completions = RecentCompletions()
        self.known_links = KnownLinks(lookups.ttl)

    async def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.create_task(self._run(), name="ingest-writer")

    async def stop(self) -> None:
        if self._task is None or self._queue is None:
            return
        # Write what was accepted before stopping: the sentinel is seen after everything queued.
        self._queue.put_nowait(None)
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout=30)
        except TimeoutError:
            self._task.cancel()
        self._task = None

    async def write(self, rows: Rows) -> None:
        """Return once ``rows`` are committed; raise (with nothing written) if they cannot be."""
        future = self._enqueue(rows)
        if future is not None:
            await future

    def submit(self, rows: Rows) -> None:
        """Queue ``rows`` without waiting for their commit (served completions: the answer must not wait
        for its log). A failure is logged. Completions are known to :attr:`recent_completions` at once, and
        anything queued later (their feedback) commits after them: the writer keeps the order."""
        future = self._enqueue(rows)
        if future is not None:
            self.recent_completions.add(rows)
            future.add_done_callback(_log_failure)

    def _enqueue(self, rows: Rows) -> asyncio.Future[None] | None:
        if self._queue is None or self._task is None or self._task.done():
            raise Unavailable("the ingest writer is not running")
        if not rows.count() and not rows.links:
            return None
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued_seq += 1
        self._queue.put_nowait(_Pending(rows, future, self._queued_seq, time.perf_counter()))
        return future

    async def barrier(self) -> None:
        """Wait until everything queued so far is written: reads after it see every row this process
        has accepted (read-your-writes for submitted completions)."""
        target = self._queued_seq
        if self._done_seq >= target or self._task is None or self._task.done():
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._barriers.append((target, waiter))
        await waiter

    def _written(self, pending: list[_Pending]) -> None:
        self._done_seq = max(self._done_seq, max(p.seq for p in pending))
        ready = [w for t, w in self._barriers if t <= self._done_seq]
        self._barriers = [(t, w) for t, w in self._barriers if t > self._done_seq]
        for waiter in ready:
            if not waiter.done():
                waiter.set_result(None)

    async def _run(self) -> None:
        try:
            await self._serve_queue()
        finally:
            if self._connection is not None:
                await self._connection.close()
                self._connection = None

    async def _serve_queue(self) -> None:
        assert self._queue is not None
        stopping = False
        while not stopping:
            first = await self._queue.get()
            if first is None:
                break
            pending = [first]
            while not self._queue.empty() and len(pending) < MAX_BATCHES_PER_COMMIT:
                item = self._queue.get_nowait()
                if item is None:
                    stopping = True
                    break
                pending.append(item)
            try:
                await self._flush(pending)
                self._written(pending)
            except asyncio.CancelledError:
                for p in pending:
                    if not p.future.done():
                        p.future.set_exception(Unavailable("the server is shutting down"))
                raise
            except Exception as exc:  # the writer must survive anything
                log.error("ingest flush failed", exc_info=exc)
                for p in pending:
                    if not p.future.done():
                        p.future.set_exception(Internal("could not store the data"))
                self._written(pending)
        # Stopped: whatever arrived after the sentinel is refused, not left waiting.
        while not self._queue.empty():
            late = self._queue.get_nowait()
            if late is not None and not late.future.done():
                late.future.set_exception(Unavailable("the server is shutting down"))
        for _, waiter in self._barriers:
            if not waiter.done():
                waiter.set_result(None)
        self._barriers = []

    async def _flush(self, pending: list[_Pending]) -> None:
        live = [p for p in pending if not p.future.cancelled()]
        if not live:
            return
        merged = Rows()
        for item in live:
            merged.extend(item.rows)
        try:
            await self._commit(merged)
        except Exception as exc:
            if len(live) == 1:
                _fail(live[0], exc)
                return
            # One bad batch must not sink the others: retry them one by one.
            for item in live:
                try:
                    await self._commit(item.rows)
                except Exception as single:
                    _fail(item, single)
                else:
                    _succeed(item)
            return
        self.batches += len(live)
        # One observation per commit: how long its oldest batch waited, and how much it merged.
        self.metrics.ingest_lag().observe(time.perf_counter() - live[0].queued_at)
        self.metrics.ingest_commit_batches().observe(len(live))
        self.metrics.ingest_commit_rows().observe(merged.count())
        for item in live:
            _succeed(item)

    async def _write(self, connection: AsyncConnection, rows: Rows, links: set[tuple[uuid.UUID, uuid.UUID]]) -> None:
        try:
            work = await planned_writes(connection, rows.tables, self.recent_completions.model_key)
        finally:
            if connection.in_transaction() and not connection.invalidated:  # model keys were read
                await connection.rollback()  # end that read before the direct write
        if links:
            work.append((_link_insert(connection.dialect.name), _link_rows(links)))
        await direct.run(connection, work)

    def _readings(self) -> list[Reading]:
        depth = self._queue.qsize() if self._queue is not None else 0
        return [("gauge", "ingest_queue_depth", "Logged batches waiting for the ingest writer", (), [((), depth)])]

    async def _commit_connection(self) -> AsyncConnection:
        """The writer's connection, kept from one commit to the next: checking one out of the pool for each
        commit (its reset on return, PostgreSQL's liveness ping) cost the event loop a fifth of the commit
        on PostgreSQL. One that failed (invalidated) is replaced here."""
        connection = self._connection
        if connection is not None and connection.invalidated:
            await connection.close()
            connection = self._connection = None
        if connection is None:
            connection = self._connection = await self._engine.connect()
        return connection

    async def _commit(self, rows: Rows) -> None:
        generation = changes.generation((UseCaseMetric,))
        links = self.known_links.missing(rows.links) if rows.links else set()
        kept = self._connection is not None and not self._connection.invalidated
        connection = await self._commit_connection()
        try:
            await self._write(connection, rows, links)
        except DBAPIError:
            if not (kept and connection.invalidated):
                raise
            # The kept connection died while idle (the database restarted...): once more, on a new one. The
            # failed attempt wrote nothing (db/direct.py: all or nothing), unless it failed in the commit itself;
            # then the rows that landed refuse their second insert by primary key.
            await self._write(await self._commit_connection(), rows, links)
        if links:
            changes.committed((UseCaseMetric,))  # the caches of links see it (db/changes.py)
        if rows.links:
            self.known_links.committed(rows.links, generation, linked=bool(links))
        self.commits += 1
        self.recent_completions.add(rows)


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("a served completion could not be stored: %s", future.exception())


def _succeed(item: _Pending) -> None:
    if not item.future.done():
        item.future.set_result(None)


def _fail(item: _Pending, exc: BaseException) -> None:
    if item.future.done():
        return
    if isinstance(exc, DomainError):
        error: DomainError = exc
    elif isinstance(exc, IntegrityError):
        error = Conflict("a referenced completion, feedback key or use case no longer exists")
    else:
        log.error("ingest write failed", exc_info=exc)
        error = Internal("could not store the data")
    item.future.set_exception(error)


def completion_row(
    *,
    use_case_id: uuid.UUID,
    messages: list[dict[str, Any]],
    completion: str | None,
    prompt_hash: str,
    model_id: uuid.UUID | None = None,
    model_key: str | None = None,
    source: str = "LIVE",
    session_id: uuid.UUID | None = None,
    user_ref: str | None = None,
    labels: dict[str, str] | None = None,
    request_id: uuid.UUID | None = None,
    prompt_tokens: int | None = None,
    completion_tokens: int | None = None,
    latency_ms: float | None = None,
    finish_reason: str | None = None,
    ab_campaign_id: uuid.UUID | None = None,
    tool_calls: list[dict[str, Any]] | None = None,
    system_prompt_template_id: uuid.UUID | None = None,
    id: uuid.UUID | None = None,  # the column's name
    created_at: datetime | None = None,
    api_key_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
    cost: float | None = None,
) -> dict[str, Any]:
    """A ``completions`` row with every column set (Core executemany wants uniform rows)."""
    return {
        "id": id or new_id(),
        "created_at": created_at or utcnow(),
        "use_case_id": use_case_id,
        "model_id": model_id,
        "model_key": model_key,
        "messages": messages,
        "completion": completion,
        "source": source,
        "prompt_hash": prompt_hash,
        "session_id": session_id,
        "user_ref": user_ref,
        "labels": labels or {},
        "request_id": request_id,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "latency_ms": latency_ms,
        "finish_reason": finish_reason,
        "ab_campaign_id": ab_campaign_id,
        "tool_calls": tool_calls,
        "system_prompt_template_id": system_prompt_template_id,
        "api_key_id": api_key_id,
        "user_id": user_id,
        "cost": cost,
    }


def rows_of(table: type, rows: Iterable[dict[str, Any]]) -> Rows:
    out = Rows()
    for row in rows:
        out.add(table, row)
    return out
