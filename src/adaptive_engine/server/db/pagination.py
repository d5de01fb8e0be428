"""The one cursor pagination helper: keyset pagination on (created_at, id).

Cursors are opaque and point at a row, so pages stay correct while new rows arrive.
"""

from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
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
        created_at = created_at.replace(tzinfo=timezone.utc)
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, row_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        return datetime.fromisoformat(created_at), uuid.UUID(row_id)
    except Exception as exc:  # noqa: BLE001 - any malformed cursor is the caller's input error
        raise InvalidInput(f"invalid cursor '{cursor}'") from exc


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
) -> Page[Any]:
    """Page through ``query`` (selecting ``model`` rows) ordered by (created_at, id)."""
    if first is not None and last is not None:
        raise InvalidInput("pass either first or last, not both")
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE_SIZE:
            raise InvalidInput(f"{name} must be between 0 and {MAX_PAGE_SIZE}")
    size = first if first is not None else last if last is not None else DEFAULT_PAGE_SIZE
    backwards = last is not None
    created, row_id = model.created_at, model.id

    def beyond(cursor: str, forward: bool) -> Any:
        at, cid = decode_cursor(cursor)
        # Rows strictly after the cursor in the listing's direction.
        if forward == newest_first:
            return or_(created < at, and_(created == at, row_id < cid))
        return or_(created > at, and_(created == at, row_id > cid))

    if after:
        query = query.where(beyond(after, True))
    if before:
        query = query.where(beyond(before, False))
    descending = newest_first != backwards
    order = (created.desc(), row_id.desc()) if descending else (created.asc(), row_id.asc())
    rows = list((await session.execute(query.order_by(*order).limit(size + 1))).scalars().unique())
    more = len(rows) > size
    rows = rows[:size]
    if backwards:
        rows.reverse()
    start = encode_cursor(rows[0].created_at, rows[0].id) if rows else None
    end = encode_cursor(rows[-1].created_at, rows[-1].id) if rows else None
    return Page(
        items=rows,
        has_next_page=more if not backwards else bool(before),
        has_previous_page=more if backwards else bool(after),
        start_cursor=start,
        end_cursor=end,
    )
