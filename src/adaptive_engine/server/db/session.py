"""Unit of work: the request (or job step) boundary owns the transaction; services never commit."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, cast

from sqlalchemy import CursorResult, Result, event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker


class _TaskLock:
    """An asyncio lock that the task holding it may take again (a locked call may make another)."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self._owner: asyncio.Task[Any] | None = None
        self._depth = 0

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        task = asyncio.current_task()
        if self._owner is task and task is not None:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        async with self._lock:
            self._owner, self._depth = task, 1
            try:
                yield
            finally:
                self._owner, self._depth = None, 0


def _one_at_a_time(method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def call(self: SerialSession, *args: Any, **kwargs: Any) -> Any:
        async with self._serial.hold():
            return await method(self, *args, **kwargs)

    return call


class SerialSession(AsyncSession):
    """An AsyncSession whose operations take turns. A session runs one statement at a time, while
    GraphQL resolves sibling fields (the root fields of a query, the items of a list) concurrently on
    the request's one session; without turns they fail with "concurrent operations are not permitted"."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._serial = _TaskLock()

    execute = _one_at_a_time(AsyncSession.execute)
    scalar = _one_at_a_time(AsyncSession.scalar)
    scalars = _one_at_a_time(AsyncSession.scalars)
    get = _one_at_a_time(AsyncSession.get)
    get_one = _one_at_a_time(AsyncSession.get_one)
    refresh = _one_at_a_time(AsyncSession.refresh)
    merge = _one_at_a_time(AsyncSession.merge)
    delete = _one_at_a_time(AsyncSession.delete)
    flush = _one_at_a_time(AsyncSession.flush)
    run_sync = _one_at_a_time(AsyncSession.run_sync)
    connection = _one_at_a_time(AsyncSession.connection)
    commit = _one_at_a_time(AsyncSession.commit)
    rollback = _one_at_a_time(AsyncSession.rollback)
    close = _one_at_a_time(AsyncSession.close)


class LazySession:
    """A request's session, opened on its first use. Data-plane requests are mostly answered from caches
    and never reach the database; opening and closing a session they do not use was a twentieth of one."""

    __slots__ = ("_open", "_session")

    def __init__(self, open_session: Callable[[], AsyncSession]) -> None:
        self._open = open_session
        self._session: AsyncSession | None = None

    @property
    def never_opened(self) -> bool:
        return self._session is None

    def __getattr__(self, name: str) -> Any:
        if self._session is None:
            self._session = self._open()
        return getattr(self._session, name)

    async def rollback(self) -> None:
        if self._session is not None:  # nothing opened, nothing to end
            await self._session.rollback()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


@asynccontextmanager
async def unit_of_work(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


def after_commit(session: AsyncSession, action: Callable[[], None]) -> None:
    """Run ``action`` once the session's transaction commits (e.g. delete a file whose row is gone),
    never if it rolls back."""
    event.listen(session.sync_session, "after_commit", lambda _s: action(), once=True)


def rowcount(result: Result[Any]) -> int:
    """The rows an INSERT, UPDATE or DELETE matched: its result is a CursorResult, which the types of
    AsyncSession.execute do not say."""
    return cast(CursorResult[Any], result).rowcount
