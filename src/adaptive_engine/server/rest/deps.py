"""FastAPI dependencies shared by the REST routers."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """A session per request; the route commits what it must acknowledge before answering."""
    async with request.app.state.sessionmaker() as session:
        yield session


async def principal(request: Request) -> Principal:
    # async: a plain function would be run on the thread pool, a thread hop per request.
    return request.state.principal
