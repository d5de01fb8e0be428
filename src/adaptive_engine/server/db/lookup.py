"""The one id-or-key resolver: every API argument typed IdOrKey goes through here."""

from __future__ import annotations

import uuid
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.errors import NotFound

T = TypeVar("T")


def parse_uuid(value: str | uuid.UUID) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


async def find_by_id_or_key(session: AsyncSession, model: type[T], value: str | uuid.UUID) -> T | None:
    as_uuid = parse_uuid(value)
    if as_uuid is not None:
        found = await session.get(model, as_uuid)
        if found is not None:
            return found
    if not hasattr(model, "key"):
        return None
    return (await session.execute(select(model).where(model.key == str(value)))).scalar_one_or_none()  # type: ignore[attr-defined]


async def get_by_id_or_key(session: AsyncSession, model: type[T], value: str | uuid.UUID, what: str) -> T:
    found = await find_by_id_or_key(session, model, value)
    if found is None:
        raise NotFound(f"{what} '{value}' not found")
    return found
