"""The one cursor pagination helper: keyset pagination on (sort column, id), created_at by default.

Cursors are opaque and point at a row, so pages stay correct while new rows arrive. Ties on the sort
column are broken by id; NULLs sort as the largest value (last ascending, first descending) on every
database, so nullable columns page the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, and_, or_
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.paging import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

T = TypeVar("T")


def contains(column: Any, text: str) -> Any:
    """``column`` holds ``text`` (any case), LIKE's wildcards in ``text`` taken literally: listings' search."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return column.ilike(f"%{escaped}%", escape="\\")


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(created_at), uuid.UUID(row_id)
    except Exception as exc:  # any malformed cursor is the caller's input error
        raise InvalidInput(f"invalid cursor '{cursor}'") from exc


@dataclass(frozen=True)
class SortKey:
    """A mapped column to page by (``Model.column``); ``name`` is what cursors carry, so a cursor
    made under one ordering is refused under another."""

    name: str
    column: Any


def encode_sort_cursor(name: str, value: Any, row_id: uuid.UUID) -> str:
    if isinstance(value, datetime):
        value = {"ts": (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()}
    elif isinstance(value, uuid.UUID):
        value = {"uuid": str(value)}
    raw = json.dumps({"by": name, "v": value, "id": str(row_id)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_sort_cursor(cursor: str, name: str) -> tuple[Any, uuid.UUID]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        value, by, row_id = data["v"], data["by"], uuid.UUID(data["id"])
        if isinstance(value, dict):
            value = datetime.fromisoformat(value["ts"]) if "ts" in value else uuid.UUID(value["uuid"])
    except Exception as exc:  # any malformed cursor is the caller's input error
        raise InvalidInput(f"invalid cursor '{cursor}'") from exc
    if by != name:
        raise InvalidInput(f"cursor '{cursor}' belongs to a listing ordered by '{by}', not '{name}'")
    return value, row_id


def _past(column: Any, row_id: Any, value: Any, cid: uuid.UUID, greater: bool) -> Any:
    """Rows after (value, cid) in (column, id) order, NULL counting as larger than any value."""
    if greater:
        if value is None:
            return and_(column.is_(None), row_id > cid)
        return or_(column > value, and_(column == value, row_id > cid), column.is_(None))
    if value is None:
        return or_(column.is_not(None), and_(column.is_(None), row_id < cid))
    return or_(column < value, and_(column == value, row_id < cid))


@dataclass
class Page(Generic[T]):
    items: list[T]
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None
    total_count: int | None = None


async def paginate(
    session: AsyncSession,
    query: Select[Any],
    model: Any,
    *,
    first: int | None = None,
    last: int | None = None,
    after: str | None = None,
    before: str | None = None,
    newest_first: bool = True,
    sort: SortKey | None = None,
) -> Page[Any]:
    """Page through ``query`` (selecting ``model`` rows) ordered by (created_at, id), or by
    (``sort``, id) when given; ``newest_first`` then means descending."""
    if first is not None and last is not None:
        raise InvalidInput("pass either first or last, not both")
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
            raise InvalidInput(f"{name} must be between 0 and {MAX_PAGE_SIZE}")
    size = first if first is not None else last if last is not None else DEFAULT_PAGE_SIZE
    backwards = last is not None
    row_id = model.id
    descending = newest_first != backwards
    if sort is None:
        created = model.created_at

        def beyond(cursor: str, forward: bool) -> Any:
            at, cid = decode_cursor(cursor)
            # Rows strictly after the cursor in the listing's direction.
            if forward == newest_first:
                return or_(created < at, and_(created == at, row_id < cid))
            return or_(created > at, and_(created == at, row_id > cid))

        order = (created.desc(), row_id.desc()) if descending else (created.asc(), row_id.asc())

        def cursor_of(row: Any) -> str:
            return encode_cursor(row.created_at, row.id)
    else:
        column, attribute = sort.column, sort.column.key

        def beyond(cursor: str, forward: bool) -> Any:
            value, cid = decode_sort_cursor(cursor, sort.name)
            return _past(column, row_id, value, cid, greater=forward != newest_first)

        order = (
            (column.desc().nulls_first(), row_id.desc()) if descending else (column.asc().nulls_last(), row_id.asc())
        )

        def cursor_of(row: Any) -> str:
            return encode_sort_cursor(sort.name, getattr(row, attribute), row.id)

    if after:
        query = query.where(beyond(after, True))
    if before:
        query = query.where(beyond(before, False))
    rows = list((await session.execute(query.order_by(*order).limit(size + 1))).scalars().unique())
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    start = cursor_of(rows[0]) if rows else None
    end = cursor_of(rows[-1]) if rows else None
    return Page(
        items=rows,
        has_next_page=more if not backwards else bool(before),
        has_previous_page=more if backwards else bool(after),
        start_cursor=start,
        end_cursor=end,
    )
