"""Online grading: graders with an online rate score that share of their use case's new live completions
in the background and write the score as feedback under the grader's key.

Sampling is deterministic per (grader, completion), so a pass that is retried samples the same
completions; a completion is graded at most once per grader.
"""

from __future__ import annotations

import hashlib
import logging
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adaptive_engine.server.db.models import Completion, Grader, GradingResult
from adaptive_engine.server.db.session import unit_of_work
from adaptive_engine.server.domains.graders import grading
from adaptive_engine.server.domains.graders.grading import GradingService
from adaptive_engine.server.domains.graders.schemas import Sample
from adaptive_engine.server.periodic import PeriodicService

log = logging.getLogger(__name__)

BATCH = 64


def sampled(grader_id: uuid.UUID, completion_id: uuid.UUID, rate: float) -> bool:
    if rate >= 1.0:
        return True
    digest = hashlib.sha256(f"{grader_id}:{completion_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < rate


class OnlineGradingService(PeriodicService):
    """Grades a sample of each grader's new traffic every ``interval_s`` seconds; ``run_once`` for tests
    (returns how many completions were graded)."""

    name = "online-grading"

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], grading: GradingService, interval_s: float = 10.0
    ) -> None:
        super().__init__(interval_s)
        self._sessionmaker = sessionmaker
        self._grading = grading

    async def _pass(self) -> int:
        sessionmaker = self._sessionmaker
        async with sessionmaker() as session:
            ids = list((await session.execute(select(Grader.id).where(Grader.online_rate > 0))).scalars())
        total = 0
        for grader_id in ids:
            try:
                total += await self._grade_new(grader_id)
            except Exception:  # one grader's failure does not stop the others
                log.exception("online grading with grader %s failed", grader_id)
        return total

    async def _grade_new(self, grader_id: uuid.UUID) -> int:
        sessionmaker = self._sessionmaker
        async with unit_of_work(sessionmaker) as session:
            grader = await session.get(Grader, grader_id)
            if grader is None or grader.online_rate <= 0:
                return 0
            query = (
                select(Completion)
                .where(
                    Completion.use_case_id == grader.use_case_id,
                    Completion.source == "LIVE",
                    Completion.completion.is_not(None),
                )
                .order_by(Completion.created_at, Completion.id)
                .limit(BATCH)
            )
            if grader.online_cursor is not None:
                query = query.where(Completion.created_at >= grader.online_cursor)
            rows = list((await session.execute(query)).scalars())
            if not rows:
                return 0
            done = set(
                (
                    await session.execute(
                        select(GradingResult.completion_id).where(
                            GradingResult.grader_id == grader.id, GradingResult.completion_id.in_([c.id for c in rows])
                        )
                    )
                ).scalars()
            )
            picked = [c for c in rows if c.id not in done and sampled(grader.id, c.id, grader.online_rate)]
            grader.online_cursor = rows[-1].created_at
            if grader.grader_type == "CUSTOM" and not grader.config.get("code"):
                return 0
            spec = await grading.spec_of(session, grader)
            samples = [
                Sample(messages=list(c.messages or []), completion=c.completion, completion_id=c.id) for c in picked
            ]
        if not samples:
            return 0
        outcomes = await self._grading.grade(spec, samples)
        async with unit_of_work(sessionmaker) as session:
            await grading.record(session, spec, samples, outcomes, origin="online")
        return len(samples)
