"""What the jobs domain hands its readers: plain values built from the rows in one place, with what a job's
artifacts say (an evaluation's scores, the model or dataset it made) read out of their metadata here."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adaptive_engine.server.db.lookup import parse_uuid
from adaptive_engine.server.db.models import Job, JobArtifact, JobMetric
from adaptive_engine.server.domains.identity.records import UserRecord
from adaptive_engine.server.domains.recipes.records import RecipeRecord
from adaptive_engine.server.domains.use_cases.service import UseCaseRecord
from adaptive_engine.server.timestamps import as_utc, utcnow

# The stage of a job that runs no recipe of the catalogue.
STAGE_NAMES = {"MODEL_CONVERSION": "model_conversion"}


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: uuid.UUID
    name: str
    status: str
    kind: str
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    progress: float
    progress_message: str | None
    error: str | None
    num_gpus: int
    args: dict[str, Any]
    recipe_hash: str
    # Where it runs: what reading its log needs.
    executor: str | None
    handle: str | None
    created_by: UserRecord | None
    use_case: UseCaseRecord | None
    recipe: RecipeRecord | None

    @classmethod
    def of(cls, job: Job) -> JobRecord:
        return cls(
            id=job.id,
            name=job.name,
            status=job.status,
            kind=job.kind,
            created_at=job.created_at,
            started_at=job.started_at,
            ended_at=job.ended_at,
            progress=float(job.progress or 0.0),
            progress_message=job.progress_message,
            error=job.error,
            num_gpus=job.num_gpus,
            args=job.args,
            recipe_hash=job.recipe_hash,
            executor=job.executor,
            handle=job.handle,
            created_by=UserRecord.of(job.created_by) if job.created_by else None,
            use_case=UseCaseRecord.of(job.use_case) if job.use_case else None,
            recipe=RecipeRecord.of(job.recipe) if job.recipe else None,
        )

    @property
    def stage_name(self) -> str:
        """The job's one stage: its recipe's key, or what it does when it runs no recipe."""
        return self.recipe.key if self.recipe and self.recipe.key else STAGE_NAMES.get(self.kind, "run")

    def duration_ms(self, now: datetime | None = None) -> int | None:
        """Milliseconds from start to end (to now while it runs); None before it starts."""
        if self.started_at is None:
            return None
        end = self.ended_at or now or utcnow()
        return max(0, int((as_utc(end) - as_utc(self.started_at)).total_seconds() * 1000))


@dataclass(frozen=True, slots=True)
class MetricPointRecord:
    step: int
    values: dict[str, Any]
    created_at: datetime

    @classmethod
    def of(cls, metric: JobMetric) -> MetricPointRecord:
        return cls(step=metric.step, values=metric.values, created_at=metric.created_at)


@dataclass(frozen=True, slots=True)
class EvalResultRecord:
    """One model's score on one grader, as an evaluation artifact reports it."""

    model_key: str
    model_name: str
    metric_key: str
    metric_name: str
    mean: float
    min: float
    max: float
    stddev: float
    count: int
    sum: float
    feedback_count: int


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    id: uuid.UUID
    job_id: uuid.UUID
    name: str
    kind: str
    status: str
    uri: str | None
    metadata: dict[str, Any]
    size_bytes: int
    created_at: datetime
    # What it made or measured: an evaluation's scores, a MODEL's model id, a DATASET's dataset id.
    eval_results: tuple[EvalResultRecord, ...]
    model_id: uuid.UUID | None
    dataset_id: uuid.UUID | None

    @classmethod
    def of(cls, artifact: JobArtifact) -> ArtifactRecord:
        meta = artifact.artifact_metadata or {}
        return cls(
            id=artifact.id,
            job_id=artifact.job_id,
            name=artifact.name,
            kind=artifact.kind,
            status=artifact.status,
            uri=artifact.uri,
            metadata=meta,
            size_bytes=artifact.size_bytes,
            created_at=artifact.created_at,
            eval_results=eval_results(meta) if artifact.kind == "EVALUATION" else (),
            model_id=_uuid(meta.get("model_id")) if artifact.kind == "MODEL" else None,
            dataset_id=_uuid(meta.get("dataset_id")) if artifact.kind == "DATASET" else None,
        )


def _uuid(value: Any) -> uuid.UUID | None:
    return parse_uuid(str(value)) if value else None


def _from_aggregates(aggregates: Any) -> list[dict[str, Any]]:
    """The built-in eval recipe's ``{model: {grader: {"mean", "std", "count"}}}`` as eval_results items."""
    items = []
    for model, graders in (aggregates or {}).items() if isinstance(aggregates, dict) else []:
        for grader, agg in (graders or {}).items():
            if isinstance(agg, dict) and agg.get("mean") is not None:
                count = int(agg.get("count") or 0)
                items.append(
                    {
                        "model_service": {"key": model},
                        "metric": {"key": grader},
                        "mean": agg["mean"],
                        "stddev": agg.get("std") or 0.0,
                        "count": count,
                        "sum": agg["mean"] * count,
                    }
                )
    return items


def eval_results(meta: dict[str, Any]) -> tuple[EvalResultRecord, ...]:
    """Evaluation artifacts carry their scores in metadata: ``eval_results`` (a list of
    {model_service: {key, name}, metric: {key, name}, mean, min, max, stddev, count, sum, feedback_count})
    or ``aggregates`` (per model, per grader: mean, std, count). Items that do not read are left out."""
    results = []
    for item in (meta.get("eval_results") or []) + _from_aggregates(meta.get("aggregates")):
        try:
            model, metric = item["model_service"], item["metric"]
            results.append(
                EvalResultRecord(
                    model_key=model["key"],
                    model_name=model.get("name", model["key"]),
                    metric_key=metric["key"],
                    metric_name=metric.get("name", metric["key"]),
                    mean=float(item["mean"]),
                    min=float(item.get("min", item["mean"])),
                    max=float(item.get("max", item["mean"])),
                    stddev=float(item.get("stddev", 0.0)),
                    count=int(item.get("count", 0)),
                    sum=float(item.get("sum", 0.0)),
                    feedback_count=int(item.get("feedback_count", item.get("count", 0))),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return tuple(results)
