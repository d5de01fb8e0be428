"""The background service that evaluates active A/B campaigns.

It wakes every ``interval_s`` seconds (0: only when asked), or at once after ``wake()``, and evaluates each
active campaign in its own transaction. Tests call ``run_once()``. Several replicas may run it: ending a
campaign is a compare-and-set, so exactly one of them promotes the winner and emits the event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adaptive_engine.server.config import Settings
from adaptive_engine.server.domains.ab_tests.service import evaluate_active
from adaptive_engine.server.domains.ab_tests.statistics import StatsConfig
from adaptive_engine.server.observability.metrics import Metrics
from adaptive_engine.server.periodic import PeriodicService

log = logging.getLogger("adaptive_engine.ab_tests")


def stats_config(settings: Settings) -> StatsConfig:
    """The statistics configuration from the server settings."""
    return StatsConfig(min_observations_per_arm=settings.ab_test_min_observations, mde=settings.ab_test_mde)


class AbTestEvaluator(PeriodicService):
    name = "ab-test-evaluator"

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        config: StatsConfig,
        interval_s: float = 5.0,
        on_change: Callable[[], None] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__(interval_s)
        self.config = config
        self.metrics = metrics or Metrics()
        self._sessionmaker = sessionmaker
        self._on_change = on_change

    async def _pass(self) -> int:
        """Evaluate every active campaign now; returns how many ended."""
        ended = await evaluate_active(self._sessionmaker, self.config)
        self.metrics.ab_evaluations().inc()
        self.metrics.ab_decisions().inc(ended)
        if ended and self._on_change is not None:
            self._on_change()
        return ended
