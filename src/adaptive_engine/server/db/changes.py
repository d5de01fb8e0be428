"""Per-table counts of the commits this process made, so in-memory caches can drop what a commit changed.

Hot paths (authentication, logging, inference routing) keep short-lived caches of rows they would
otherwise read on every request. Each cache remembers ``generation(tables)`` when it stores an entry and
treats the entry as stale once that number moves: a commit of this process that touched one of the
tables (ORM flushes, and INSERT/UPDATE/DELETE statements on a mapped class or its Table) bumps it right after
the commit, so no request can cache the old state in between. Other processes (replicas, the CLI) are
seen through each cache's time-to-live instead.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

_TOUCHED = "changed_tables"


class _Registry:
    """Process-wide, like the ORM's own mapper registry: one count per mapped class."""

    counts: dict[type, int] = {}
    installed = False
    by_table: dict[Any, type] = {}


def _touched(session: Session) -> set[type]:
    return session.info.setdefault(_TOUCHED, set())


def _on_flush(session: Session, _context: Any) -> None:
    touched = _touched(session)
    for obj in itertools.chain(session.new, session.dirty, session.deleted):
        touched.add(type(obj))


def _on_execute(state: Any) -> None:
    if not (state.is_insert or state.is_update or state.is_delete):
        return
    if state.bind_mapper is not None:
        _touched(state.session).add(state.bind_mapper.class_)
        return
    # A statement on the Table itself (bulk writes skip the ORM layer): its mapped class, if it has one.
    table = getattr(state.statement, "table", None)
    mapped = _class_of_table(table) if table is not None else None
    if mapped is not None:
        _touched(state.session).add(mapped)


def _class_of_table(table: Any) -> type | None:
    if not _Registry.by_table:
        from adaptive_engine.server.db.base import Base

        _Registry.by_table = {mapper.local_table: mapper.class_ for mapper in Base.registry.mappers}
    return _Registry.by_table.get(table)


def _on_commit(session: Session) -> None:
    committed(session.info.pop(_TOUCHED, ()))


def _on_rollback(session: Session) -> None:
    session.info.pop(_TOUCHED, None)


def install() -> None:
    """Start watching sessions (idempotent; every cache calls it when built)."""
    if _Registry.installed:
        return
    event.listen(Session, "after_flush", _on_flush)
    event.listen(Session, "do_orm_execute", _on_execute)
    event.listen(Session, "after_commit", _on_commit)
    event.listen(Session, "after_rollback", _on_rollback)
    _Registry.installed = True


def committed(tables: Iterable[type]) -> None:
    """Count a commit to ``tables``, right after it: a session's (its flushed and executed changes), or one
    made outside a session (db/direct.py)."""
    counts = _Registry.counts
    for table in tables:
        counts[table] = counts.get(table, 0) + 1


def generation(tables: Iterable[type]) -> int:
    """A number that grows whenever this process commits a change to one of ``tables``."""
    if not _Registry.installed:
        install()
    get = _Registry.counts.get
    return sum([get(table, 0) for table in tables])


def pending(session: Any, tables: Iterable[type]) -> bool:
    """Whether ``session`` (sync or async) flushed changes to one of ``tables`` that are not committed yet:
    a cached answer would not show them to the request that made them."""
    if getattr(session, "never_opened", False):  # a LazySession nothing has used: no changes, and none opened
        return False
    sync = getattr(session, "sync_session", session)
    touched = sync.info.get(_TOUCHED)
    return bool(touched) and any(table in touched for table in tables)
