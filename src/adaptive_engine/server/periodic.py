"""Background services of the app (``Platform.services``): started in order, stopped in reverse, and the one loop
they share — a pass of work every few seconds, or at once when woken."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Protocol

log = logging.getLogger("adaptive_engine")


class Service(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def cancel_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has ended, whatever it raised on the way out."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):  # it is being stopped
        pass


class PeriodicService:
    """Runs ``_pass`` every ``interval_s`` seconds (0: never) once started, and at once after ``wake()``;
    ``run_once`` runs a pass now (tests), never two at a time. A failing pass is logged and the next one runs as
    planned. ``first_pass_at_start``: the first pass runs when the service starts rather than one interval later."""

    name = "periodic"
    first_pass_at_start = False

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        # The event loop the service runs in (tests submit run_once to it from their thread).
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None

    @property
    def running(self) -> bool:
        """Whether the loop is alive (started, not stopped, not dead of an error it could not survive)."""
        return self._task is not None and not self._task.done()

    def wake(self) -> None:
        """Run the next pass now instead of at the end of the interval; callable from any thread."""
        loop = self.loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self._wake.set)
        else:
            self._wake.set()

    async def _loop(self) -> None:
        if not self.first_pass_at_start:
            await self._sleep()
        while True:
            try:
                await self.run_once()
            except Exception:  # the loop outlives one bad pass
                log.exception("%s pass failed", self.name)
            await self._sleep()

    async def _sleep(self) -> None:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.interval_s)
        self._wake.clear()

    async def run_once(self) -> Any:
        async with self._lock:
            return await self._pass()

    async def _pass(self) -> Any:
        raise NotImplementedError
