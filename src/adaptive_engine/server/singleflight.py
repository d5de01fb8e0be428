"""One read for many waiters: when a cached entry expires under load, every concurrent request misses it
at the same moment; only the first reads the database and the others wait for its answer."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class SingleFlight:
    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Future[Any]] = {}

    async def run(self, key: Hashable, load: Callable[[], Awaitable[Any]]) -> Any:
        flight = self._flights.get(key)
        if flight is not None:
            await asyncio.wait({flight})
            if not flight.cancelled() and flight.exception() is None:
                return flight.result()
            # The first reader failed or was cancelled: its error is its own, read again here.
            return await load()
        flight = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            value = await load()
        except asyncio.CancelledError:
            flight.cancel()
            raise
        except BaseException as exc:
            flight.set_exception(exc)
            flight.exception()  # retrieved: waiters fall back to their own read
            raise
        else:
            flight.set_result(value)
            return value
        finally:
            self._flights.pop(key, None)
