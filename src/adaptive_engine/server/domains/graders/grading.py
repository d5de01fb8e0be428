"""The grading service: ``grade(grader, samples)`` -> one score + reasoning (or error) per sample.

One code path serves API calls (users, and the eval / grpo recipes through the SDK), and online grading
of live traffic. A failure on one sample is that sample's error and never fails the others. Grading
runs outside database transactions (it can take long); results are recorded afterwards.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.db.models import (
    Completion,
    Feedback,
    Grader,
    GradingResult,
    Metric,
    Model,
)
from adaptive_engine.server.domains.feedback_keys.service import coerce_value
from adaptive_engine.server.domains.graders import custom, judges, remote
from adaptive_engine.server.domains.graders.schemas import Sample
from adaptive_engine.server.domains.interactions import rollups
from adaptive_engine.server.errors import (
    DomainError,
    InvalidInput,
    NotFound,
    SandboxUnavailable,
    Unavailable,
)
from adaptive_engine.server.outbound import OutboundGuard
from adaptive_engine.server.sandbox import Sandbox

log = logging.getLogger(__name__)

MAX_REASONING_STORED = 8000


@dataclass
class GraderSpec:
    """What grading needs of a grader, detached from the database session."""

    id: uuid.UUID
    key: str
    use_case_id: uuid.UUID
    grader_type: str
    config: dict[str, Any]
    metric_id: uuid.UUID
    metric_key: str
    model_key: str | None = None


@dataclass
class Outcome:
    score: float | None = None
    reasoning: str | None = None
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"score": self.score, "reasoning": self.reasoning, "error": self.error}


async def spec_of(session: AsyncSession, grader: Grader) -> GraderSpec:
    model_key = None
    if grader.grader_type in ("JUDGE", "PREBUILT"):
        model = await session.get(Model, uuid.UUID(grader.config["model_id"]))
        if model is None:
            raise NotFound(f"grader '{grader.key}': its judge model is no longer in the registry")
        model_key = model.key
    return GraderSpec(
        id=grader.id,
        key=grader.key,
        use_case_id=grader.use_case_id,
        grader_type=grader.grader_type,
        config=dict(grader.config),
        metric_id=grader.metric_id,
        metric_key=grader.metric.key,
        model_key=model_key,
    )


class GradingService:
    """Runs graders. ``generator`` gives judges a chat model (see judges.TextGenerator); it is looked up
    when needed, so the service works before (and without) the inference layer for other graders."""

    def __init__(
        self,
        generator_factory: Any = None,
        *,
        guard: OutboundGuard,
        sandbox: Sandbox | None = None,
        remote_timeout_s: float = remote.DEFAULT_TIMEOUT_S,
        custom_timeout_s: float = 5.0,
        judge_concurrency: int = 8,
        constrained: bool = True,
    ) -> None:
        # Where custom graders' code runs (None: custom graders are refused).
        self.sandbox = sandbox
        # () -> TextGenerator | None, asked at each use (the inference layer may start later).
        self._generator_factory = generator_factory
        self.guard = guard
        self.remote_timeout_s = remote_timeout_s
        self.custom_timeout_s = custom_timeout_s
        self.judge_concurrency = judge_concurrency
        self.constrained = constrained

    def generator(self) -> judges.TextGenerator:
        gen = self._generator_factory() if self._generator_factory is not None else None
        if gen is None:
            raise Unavailable("judges need the inference layer, which is not running")
        return gen

    async def grade(self, spec: GraderSpec, samples: list[Sample]) -> list[Outcome]:
        try:
            if spec.grader_type == "REMOTE":
                return await self._remote(spec, samples)
            if spec.grader_type == "CUSTOM":
                return await self._custom(spec, samples)
            return await self._judge(spec, samples)
        except DomainError as exc:
            # The grader as a whole failed (server down, model offline): every sample records why.
            return [Outcome(error=exc.message) for _ in samples]

    async def _remote(self, spec: GraderSpec, samples: list[Sample]) -> list[Outcome]:
        requests = [(remote.turns_of(s.messages, s.completion), s.metadata) for s in samples]
        try:
            async with remote.RewardServerClient(
                spec.config["url"], self.guard, timeout_s=self.remote_timeout_s
            ) as client:
                rewards = await client.batch_score(requests)
        except remote.RemoteFailure as failure:
            # Results are read by everyone on the use case: they get the generic reason, the log the cause.
            log.warning("remote grader %s failed: %s", spec.key, failure.detail)
            raise
        return [
            Outcome(
                score=r.reward,
                reasoning=r.reasoning if r.error is None else None,
                error=r.error,
                extra={"metadata": r.metadata},
            )
            for r in rewards
        ]

    async def _custom(self, spec: GraderSpec, samples: list[Sample]) -> list[Outcome]:
        code = spec.config.get("code")
        if not code:
            raise InvalidInput(f"custom grader '{spec.key}' has no code: it is scored by the recipe that uses it")
        payload = [{"messages": s.messages, "completion": s.completion, "metadata": s.metadata or {}} for s in samples]
        results = await custom.run_custom(code, payload, self._sandbox(), per_sample_s=self.custom_timeout_s)
        return [Outcome(score=r.score, reasoning=r.reasoning, error=r.error) for r in results]

    def _sandbox(self) -> Sandbox:
        if self.sandbox is None:
            raise SandboxUnavailable("running a custom grader refused: this grading service has no sandbox")
        return self.sandbox

    async def check_runnable(self, spec: GraderSpec) -> None:
        """A typed refusal up front, for a caller waiting on the answer, where the grader's code cannot run here."""
        if spec.grader_type == "CUSTOM":
            await self._sandbox().require("running a custom grader")

    async def _judge(self, spec: GraderSpec, samples: list[Sample]) -> list[Outcome]:
        generate = self.generator()
        gate = asyncio.Semaphore(self.judge_concurrency)
        model_key = spec.model_key
        assert model_key is not None

        async def one(sample: Sample) -> Outcome:
            async with gate:
                try:
                    if spec.grader_type == "PREBUILT":
                        result = await judges.run_prebuilt(
                            generate,
                            model_key,
                            judges.PrebuiltKey(spec.config["criteria"]),
                            messages=sample.messages,
                            completion=sample.completion or "",
                            constrained=self.constrained,
                        )
                        return Outcome(score=result.score, reasoning=result.reasoning)
                    verdict = await judges.run_binary_judge(
                        generate,
                        model_key,
                        criteria=spec.config["criteria"],
                        examples=spec.config.get("examples") or [],
                        messages=sample.messages,
                        completion=sample.completion or "",
                        constrained=self.constrained,
                        system_template=spec.config.get("system_template"),
                        user_template=spec.config.get("user_template"),
                    )
                    return Outcome(score=verdict.score, reasoning=f"{verdict.verdict}: {verdict.reasoning}".strip())
                except judges.JudgeParseError as exc:
                    return Outcome(error=str(exc))
                except DomainError as exc:
                    return Outcome(error=exc.message)
                except Exception as exc:  # one sample's failure never fails the batch
                    log.exception("judge %s failed on a sample", spec.key)
                    return Outcome(error=f"the judge failed: {type(exc).__name__}: {exc}"[:2000])

        return list(await asyncio.gather(*(one(s) for s in samples)))


# --------------------------------------------------------------------------- recording


async def check_completions(session: AsyncSession, spec: GraderSpec, samples: list[Sample]) -> None:
    """Samples that name a completion must name one of the grader's use case."""
    ids = []
    for i, s in enumerate(samples):
        if s.completion_id is None:
            continue
        try:
            s.completion_id = uuid.UUID(str(s.completion_id))
        except ValueError as exc:
            raise InvalidInput(f"sample {i}: completion_id '{s.completion_id}' is not a UUID") from exc
        ids.append(s.completion_id)
    if not ids:
        return
    found = set(
        (
            await session.execute(
                select(Completion.id).where(Completion.id.in_(ids), Completion.use_case_id == spec.use_case_id)
            )
        ).scalars()
    )
    missing = [str(i) for i in ids if i not in found]
    if missing:
        raise NotFound(f"completion(s) not found in the grader's use case: {', '.join(missing[:5])}")


async def record(
    session: AsyncSession, spec: GraderSpec, samples: list[Sample], outcomes: list[Outcome], origin: str
) -> None:
    """Keep the verdicts on logged completions: a GradingResult each, and the score as metric feedback
    under the grader's key (a score the key cannot hold, e.g. 0.5 on a bool key, is recorded as an error)."""
    metric = await session.get(Metric, spec.metric_id)
    scores: list[Feedback] = []
    for sample, outcome in zip(samples, outcomes, strict=True):
        if sample.completion_id is None:
            continue
        error = outcome.error
        if outcome.score is not None and error is None and metric is not None:
            try:
                value = coerce_value(metric, outcome.score, "score")
            except InvalidInput as exc:
                error = exc.message
            else:
                scores.append(
                    Feedback(
                        completion_id=sample.completion_id,
                        metric_id=metric.id,
                        use_case_id=spec.use_case_id,
                        value=value,
                        reason=f"grader:{spec.key}"[:200],
                        details=(outcome.reasoning or None) and outcome.reasoning[:MAX_REASONING_STORED],
                        user_ref=f"grader:{spec.key}"[:200],
                    )
                )
                session.add(scores[-1])
        session.add(
            GradingResult(
                grader_id=spec.id,
                completion_id=sample.completion_id,
                origin=origin,
                score=outcome.score,
                reasoning=(outcome.reasoning or None) and outcome.reasoning[:MAX_REASONING_STORED],
                error=error,
            )
        )
    await session.flush()
    # The scores are metric feedback: counted in the use case's time series like any other.
    await rollups.add(
        session,
        {
            Feedback: [
                {c: getattr(f, c) for c in ("use_case_id", "metric_id", "completion_id", "value", "created_at")}
                for f in scores
            ]
        },
    )


async def grade_samples(
    session: AsyncSession,
    caller: Any,
    grading_service: GradingService,
    use_case: str,
    grader_key: str,
    samples: list[Sample],
) -> list[Outcome]:
    """Grade samples for a caller: checks access (feedback:write when results are written on completions),
    grades outside any transaction, then records the verdicts on completions (the caller commits)."""
    from adaptive_engine.server.domains.graders import service

    records = any(s.completion_id is not None for s in samples)
    grader = await service.get_grader(
        session, caller, use_case, grader_key, "feedback:write" if records else service.READ
    )
    spec = await spec_of(session, grader)
    await check_completions(session, spec, samples)
    if spec.grader_type == "CUSTOM" and not spec.config.get("code"):
        raise InvalidInput(f"custom grader '{spec.key}' has no code: it is scored by the recipe that uses it")
    await grading_service.check_runnable(spec)
    await session.rollback()  # no transaction stays open while grading runs
    outcomes = await grading_service.grade(spec, samples)
    if records:
        await record(session, spec, samples, outcomes, origin="api")
    return outcomes
