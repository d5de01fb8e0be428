"""Write statements run on the database driver's own connection, in one transaction: the ingest writer's
commits. Through SQLAlchemy's execution layer, each statement of a commit (its execution context, the
parameter processing of every row, the async adapter's cursor round trips to the driver) cost the event loop
more than the rows themselves: the writer took about half of the server's CPU under a logging load.

The statements are still SQLAlchemy's: each is compiled once per dialect and set of keys, and every value
goes through the dialect's own bind processor for its column, so rows are stored exactly as through
SQLAlchemy. Python-side column defaults are applied for the keys a row leaves out. A driver error comes
back as SQLAlchemy's exception of the same kind (``IntegrityError``...), and a connection that failed
otherwise is invalidated, so the pool replaces it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import exc
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.compiler import SQLCompiler

# (statement, its rows as column dicts): one executemany each, in order.
Work = Sequence[tuple[ClauseElement, Sequence[Mapping[str, Any]]]]


@dataclass(frozen=True)
class Prepared:
    """A statement as the driver takes it: its SQL and how to turn one row into its positional values."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    defaults: tuple[tuple[str, Callable[[], Any]], ...]  # keys the rows leave out, with their column default

    def values(self, rows: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
        get = operator.itemgetter(*self.names)
        out = []
        for row in rows:
            if self.defaults:
                row = {**{name: default() for name, default in self.defaults}, **row}
            raw = get(row) if len(self.names) > 1 else (get(row),)
            # Every value through its processor, None included (a JSON column stores None as JSON null).
            out.append(tuple(value if p is None else p(value) for value, p in zip(raw, self.processors, strict=True)))
        return out


_prepared: dict[tuple[int, str, tuple[str, ...]], tuple[ClauseElement, Prepared]] = {}


def prepare(statement: ClauseElement, dialect: Dialect, keys: tuple[str, ...]) -> Prepared:
    """``statement`` compiled for rows with ``keys``. Cached, holding the statement: pass statements that are
    built once (``functools.cache``), not one per call."""
    cache_key = (id(statement), dialect.name, keys)
    found = _prepared.get(cache_key)
    if found is not None and found[0] is statement:
        return found[1]
    compiled = cast(SQLCompiler, statement.compile(dialect=dialect, column_keys=list(keys)))
    names = tuple(compiled.positiontup or ())
    unknown = [key for key in keys if key not in names]
    if unknown:  # the compiler leaves them out: refused, not dropped
        raise ValueError(f"{statement}: no column for {', '.join(map(repr, unknown))}")
    defaults = []
    for name in names:
        if name in keys:
            continue
        default = _column_default(statement, name)
        bind = compiled.binds[name]
        if default is None and not bind.required:  # a literal of the statement itself (``x + 1``)
            default = _constant(bind.effective_value)
        if default is None:
            raise ValueError(f"{statement}: rows lack {name!r}, whose default only SQLAlchemy's execution applies")
        defaults.append((name, default))
    processors = tuple(compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in names)
    prepared = Prepared(str(compiled), names, processors, tuple(defaults))
    _prepared[cache_key] = (statement, prepared)
    return prepared


def _column_default(statement: ClauseElement, name: str) -> Callable[[], Any] | None:
    table = getattr(statement, "table", None)
    column = table.c.get(name) if table is not None else None
    default = getattr(column, "default", None)
    if default is None:
        return None
    if default.is_callable:
        arg = default.arg
        return lambda: arg(None)  # SQLAlchemy wraps a column default to take an execution context
    if default.is_scalar:
        return _constant(default.arg)
    return None


def _constant(value: Any) -> Callable[[], Any]:
    return lambda: value


def key_groups(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, ...], list[Mapping[str, Any]]]:
    """``rows`` by their set of keys (sorted): one executemany takes rows with the same keys."""
    groups: dict[tuple[str, ...], list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    return groups


async def run(connection: AsyncConnection, work: Work) -> None:
    """Run ``work`` on ``connection``'s driver connection and commit: all of it, or none of it. The
    connection must not be in a transaction of SQLAlchemy's."""
    dialect = connection.dialect
    batches = []
    for statement, rows in work:
        if not rows:
            continue
        for keys, group in key_groups(rows).items():
            prepared = prepare(statement, dialect, keys)
            batches.append((prepared.sql, prepared.values(group)))
    if not batches:
        return
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    try:
        if dialect.name == "sqlite":
            await _run_aiosqlite(driver, batches)
        elif dialect.driver == "asyncpg":
            await _run_asyncpg(driver, batches)
        else:  # pragma: no cover - the engine is built for these two drivers only
            raise NotImplementedError(f"no direct writes for {dialect.name}+{dialect.driver}")
    except Exception as error:
        translated = _translated(error, dialect)
        if not isinstance(translated, exc.IntegrityError):
            await connection.invalidate()
        raise translated from error


async def _run_aiosqlite(connection: Any, batches: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
    await connection.execute("BEGIN")
    try:
        for sql, values in batches:
            await connection.executemany(sql, values)
        await connection.commit()
    except BaseException:
        await connection.rollback()
        raise


async def _run_asyncpg(connection: Any, batches: list[tuple[str, list[tuple[Any, ...]]]]) -> None:
    async with connection.transaction():
        for sql, values in batches:
            await connection.executemany(sql, values)


def _translated(error: Exception, dialect: Dialect) -> Exception:
    """The driver's error as SQLAlchemy's (what callers already handle)."""
    if isinstance(error, exc.SQLAlchemyError):
        return error
    name = type(error).__name__
    integrity = name == "IntegrityError" or _is_asyncpg_integrity(error)
    wrapper = exc.IntegrityError if integrity else exc.OperationalError
    return wrapper(f"direct write on {dialect.name}", None, error)


def _is_asyncpg_integrity(error: Exception) -> bool:
    try:
        from asyncpg.exceptions import IntegrityConstraintViolationError  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - asyncpg is a dependency
        return False
    return isinstance(error, IntegrityConstraintViolationError)
