"""Background services of the app (``app.state.services``) that do one pass of work every few seconds."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger("adaptive_engine")


async def cancel_task(task: asyncio.Task[Any] | None) -> None:
    """Cancel ``task`` and wait until it has ended, whatever it raised on the way out."""
    if task is None:
        return
    task.cancel()
    try:
        await task
    except (asyncio.CancelledError, Exception):  # noqa: BLE001 - it is being stopped
        pass


class PeriodicService:
    """Runs ``_pass`` every ``interval_s`` seconds (0: never) once started; ``run_once`` runs a pass now
    (tests), never two at a time. A failing pass is logged and the next one runs as planned."""

    name = "periodic"

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self._app: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        # The event loop the service runs in (tests submit run_once to it from their thread).
        self.loop: asyncio.AbstractEventLoop | None = None

    async def start(self, app: Any) -> None:
        self._app = app
        self.loop = asyncio.get_running_loop()
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        await cancel_task(self._task)
        self._task = None

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.run_once()
            except Exception:  # noqa: BLE001 - the loop outlives one bad pass
                log.exception("%s pass failed", self.name)

    async def run_once(self) -> Any:
        async with self._lock:
            return await self._pass()

    async def _pass(self) -> Any:
        raise NotImplementedError
