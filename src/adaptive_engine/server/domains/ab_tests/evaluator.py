"""The background service that evaluates active A/B campaigns.

It wakes every ``interval_s`` seconds, or at once when ``nudge()`` is called (the feedback path may
call it after storing feedback), and evaluates each active campaign in its own transaction.
Tests call ``run_once()``.  Several replicas may run it: ending a campaign is a compare-and-set, so
exactly one of them promotes the winner and emits the event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from adaptive_engine.server.domains.ab_tests.routing import AbRouter
from adaptive_engine.server.domains.ab_tests.service import evaluate_active
from adaptive_engine.server.domains.ab_tests.statistics import StatsConfig

log = logging.getLogger("adaptive_engine.ab_tests")


def stats_config(settings: Any) -> StatsConfig:
    """The statistics configuration from the server settings (defaults where a setting is absent)."""
    return StatsConfig(
        min_observations_per_arm=getattr(settings, "ab_test_min_observations", 50),
        mde=getattr(settings, "ab_test_mde", 0.2),
    )


class AbTestEvaluator:
    def __init__(
        self, config: StatsConfig, interval_s: float = 5.0, on_change: Callable[[], None] | None = None
    ) -> None:
        self.config = config
        self.interval_s = interval_s
        self._on_change = on_change
        self._sessionmaker: Any = None
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()

    async def start(self, app: Any) -> None:
        self._sessionmaker = app.state.sessionmaker
        self._wake = asyncio.Event()
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._loop(), name="ab-test-evaluator")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def nudge(self) -> None:
        self._wake.set()

    async def run_once(self) -> int:
        """Evaluate every active campaign now; returns how many ended."""
        if self._sessionmaker is None:
            raise RuntimeError("the evaluator has not been started")
        ended = await evaluate_active(self._sessionmaker, self.config)
        if ended and self._on_change is not None:
            self._on_change()
        return ended

    async def _loop(self) -> None:
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval_s)
            self._wake.clear()
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a failed round is logged; the next one retries
                log.exception("A/B campaign evaluation failed")


def install(app: Any) -> AbTestEvaluator:
    """Put the router (``app.state.ab_router``) and the evaluator (``app.state.ab_tests``, a long-lived
    service) on the app."""
    settings = app.state.settings
    router = AbRouter()
    evaluator = AbTestEvaluator(
        stats_config(settings), getattr(settings, "ab_test_evaluation_interval_s", 5.0), on_change=router.invalidate
    )
    app.state.ab_router = router
    app.state.ab_tests = evaluator
    app.state.services.append(evaluator)
    return evaluator
