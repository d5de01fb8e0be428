"""GraphQL of jobs and their artifacts."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated, Any

import strawberry
from sqlalchemy import select
from strawberry.types import Info

from adaptive_engine.server.auth.guard import requires, use_case_of
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.domains.identity.records import UserRecord
from adaptive_engine.server.domains.identity.types import UserType, to_gql_user
from adaptive_engine.server.domains.jobs import service
from adaptive_engine.server.domains.jobs.service import find_job
from adaptive_engine.server.domains.recipes.graphql import CustomRecipeType, to_gql_recipe
from adaptive_engine.server.domains.recipes.records import RecipeRecord
from adaptive_engine.server.domains.use_cases.graphql import UseCaseType, to_gql_use_case
from adaptive_engine.server.domains.use_cases.service import UseCaseRecord
from adaptive_engine.server.graphql.common import (
    CursorPageInput,
    OrderPair,
    PageInfo,
    TimeRange,
)
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.loaders import children
from adaptive_engine.server.graphql.scalars import JSON, IdOrKey
from adaptive_engine.server.timestamps import epoch, utcnow


@strawberry.enum(name="JobStatus")
class JobStatus(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELED = "CANCELED"


@strawberry.enum(name="JobStatusOutput")
class JobStatusOutput(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    DONE = "DONE"
    CANCELLED = "CANCELLED"
    ERROR = "ERROR"


STAGE_STATUS = {
    "PENDING": JobStatusOutput.PENDING,
    "RUNNING": JobStatusOutput.RUNNING,
    "COMPLETED": JobStatusOutput.DONE,
    "FAILED": JobStatusOutput.ERROR,
    "CANCELED": JobStatusOutput.CANCELLED,
}
# The stage of a job that runs no recipe of the catalogue.
STAGE_NAMES = {"MODEL_CONVERSION": "model_conversion"}


@strawberry.enum(name="JobKind")
class JobKind(enum.Enum):
    TRAINING = "TRAINING"
    EVALUATION = "EVALUATION"
    DATASET_GENERATION = "DATASET_GENERATION"
    MODEL_CONVERSION = "MODEL_CONVERSION"
    CUSTOM = "CUSTOM"


@strawberry.enum(name="JobArtifactKind")
class JobArtifactKind(enum.Enum):
    EVALUATION = "EVALUATION"
    CUSTOM = "CUSTOM"
    DATASET = "DATASET"
    MODEL = "MODEL"


@strawberry.enum(name="JobArtifactStatus")
class JobArtifactStatus(enum.Enum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    READY = "READY"
    ERROR = "ERROR"


@strawberry.type(name="TrainingJobStageOutput")
class TrainingJobStageOutput:
    monitoring_link: str | None = None
    total_num_samples: int | None = None
    processed_num_samples: int | None = None
    checkpoints: list[str] = strawberry.field(default_factory=list)


@strawberry.type(name="EvalJobStageOutput")
class EvalJobStageOutput:
    total_num_samples: int | None = None
    processed_num_samples: int | None = None


@strawberry.type(name="BatchInferenceJobStageOutput")
class BatchInferenceJobStageOutput:
    total_num_samples: int | None = None
    processed_num_samples: int | None = None


JobStageInfo = Annotated[
    TrainingJobStageOutput | EvalJobStageOutput | BatchInferenceJobStageOutput, strawberry.union("JobStageInfo")
]


@strawberry.type(name="JobStage")
class JobStage:
    name: str
    status: JobStatusOutput
    info: JobStageInfo | None
    progress: float
    message: str | None


@strawberry.type(name="EvalResultModelService")
class EvalResultModelService:
    key: str
    name: str


@strawberry.type(name="EvalResultMetric")
class EvalResultMetric:
    key: str
    name: str


@strawberry.type(name="EvaluationResult")
class EvaluationResult:
    mean: float
    min: float
    max: float
    stddev: float
    count: int
    sum: float
    feedback_count: int
    job_id: uuid.UUID
    artifact_id: uuid.UUID | None
    model_service: EvalResultModelService
    metric: EvalResultMetric


@strawberry.type(name="EvaluationByproducts")
class EvaluationByproducts:
    eval_results: list[EvaluationResult]


@strawberry.type(name="DatasetByproducts")
class DatasetByproducts:
    dataset_id: uuid.UUID | None = None


@strawberry.type(name="ModelByproducts")
class ModelByproducts:
    model_id: uuid.UUID | None = None


ArtifactByproducts = Annotated[
    EvaluationByproducts | DatasetByproducts | ModelByproducts, strawberry.union("ArtifactByproducts")
]


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


def _eval_results(artifact: orm.JobArtifact) -> list[EvaluationResult]:
    """Evaluation artifacts carry their scores in metadata: ``eval_results`` (a list of
    {model_service: {key, name}, metric: {key, name}, mean, min, max, stddev, count, sum, feedback_count})
    or ``aggregates`` (per model, per grader: mean, std, count)."""
    results = []
    meta = artifact.artifact_metadata or {}
    for item in (meta.get("eval_results") or []) + _from_aggregates(meta.get("aggregates")):
        try:
            service_info, metric = item["model_service"], item["metric"]
            results.append(
                EvaluationResult(
                    mean=float(item["mean"]),
                    min=float(item.get("min", item["mean"])),
                    max=float(item.get("max", item["mean"])),
                    stddev=float(item.get("stddev", 0.0)),
                    count=int(item.get("count", 0)),
                    sum=float(item.get("sum", 0.0)),
                    feedback_count=int(item.get("feedback_count", item.get("count", 0))),
                    job_id=artifact.job_id,
                    artifact_id=artifact.id,
                    model_service=EvalResultModelService(
                        key=service_info["key"], name=service_info.get("name", service_info["key"])
                    ),
                    metric=EvalResultMetric(key=metric["key"], name=metric.get("name", metric["key"])),
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return results


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


@strawberry.type(name="JobArtifact")
class JobArtifactType:
    row: strawberry.Private[orm.JobArtifact]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def kind(self) -> JobArtifactKind:
        return JobArtifactKind(self.row.kind)

    @strawberry.field
    def status(self) -> JobArtifactStatus:
        return JobArtifactStatus(self.row.status)

    @strawberry.field
    def uri(self) -> str | None:
        return self.row.uri

    @strawberry.field
    def metadata(self) -> JSON:
        return self.row.artifact_metadata or {}

    @strawberry.field
    def size_bytes(self) -> int:
        return self.row.size_bytes

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0

    @strawberry.field
    def byproducts(self) -> ArtifactByproducts | None:
        meta = self.row.artifact_metadata or {}
        if self.row.kind == "EVALUATION":
            return EvaluationByproducts(eval_results=_eval_results(self.row))
        if self.row.kind == "MODEL":
            return ModelByproducts(model_id=_uuid(meta.get("model_id")))
        if self.row.kind == "DATASET":
            return DatasetByproducts(dataset_id=_uuid(meta.get("dataset_id")))
        return None


# The artifacts and metric points of each job, for all the jobs of a page at once.
ARTIFACTS = children(
    lambda ids: (
        select(orm.JobArtifact.job_id, orm.JobArtifact)
        .where(orm.JobArtifact.job_id.in_(ids))
        .order_by(orm.JobArtifact.created_at, orm.JobArtifact.name)
    )
)
METRICS = children(
    lambda ids: (
        select(orm.JobMetric.job_id, orm.JobMetric)
        .where(orm.JobMetric.job_id.in_(ids))
        .order_by(orm.JobMetric.step, orm.JobMetric.created_at)
    )
)


@strawberry.type(name="JobDetails")
class JobDetails:
    job: strawberry.Private[orm.Job]

    @strawberry.field
    def args(self) -> JSON:
        return self.job.args

    @strawberry.field
    def recipe_hash(self) -> str:
        return self.job.recipe_hash

    @strawberry.field
    async def artifacts(self, info: Info[Context, None]) -> list[JobArtifactType]:
        return [JobArtifactType(row=a) for a in await info.context.loaders.load(ARTIFACTS, self.job.id)]


@strawberry.type(name="JobMetricPoint")
class JobMetricPoint:
    step: int
    values: JSON
    created_at: int


@strawberry.type(name="Job")
class JobType:
    row: strawberry.Private[orm.Job]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def status(self) -> JobStatus:
        return JobStatus(self.row.status)

    @strawberry.field
    def kind(self) -> JobKind:
        return JobKind(self.row.kind)

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0

    @strawberry.field
    def created_by(self) -> UserType | None:
        return to_gql_user(UserRecord.of(self.row.created_by)) if self.row.created_by else None

    @strawberry.field
    def started_at(self) -> int | None:
        return epoch(self.row.started_at)

    @strawberry.field
    def ended_at(self) -> int | None:
        return epoch(self.row.ended_at)

    @strawberry.field
    def duration_ms(self) -> int | None:
        start = epoch(self.row.started_at)
        if start is None:
            return None
        end = self.row.ended_at or utcnow()
        started = self.row.started_at
        if started.tzinfo is None and end.tzinfo is not None:
            end = end.replace(tzinfo=None)
        if end.tzinfo is None and started.tzinfo is not None:
            started = started.replace(tzinfo=None)
        return max(0, int((end - started).total_seconds() * 1000))

    @strawberry.field
    def progress(self) -> float:
        return float(self.row.progress or 0.0)

    @strawberry.field
    def progress_message(self) -> str | None:
        return self.row.progress_message

    @strawberry.field
    def error(self) -> str | None:
        return self.row.error

    @strawberry.field
    def num_gpus(self) -> int:
        return self.row.num_gpus

    @strawberry.field
    def stages(self) -> list[JobStage]:
        info: Any = None
        if self.row.kind == "TRAINING":
            info = TrainingJobStageOutput()
        elif self.row.kind == "EVALUATION":
            info = EvalJobStageOutput()
        return [
            JobStage(
                name=self.row.recipe.key if self.row.recipe else STAGE_NAMES.get(self.row.kind, "run"),
                status=STAGE_STATUS[self.row.status],
                info=info,
                progress=float(self.row.progress or 0.0),
                message=self.row.progress_message,
            )
        ]

    @strawberry.field
    def use_case(self) -> UseCaseType | None:
        return to_gql_use_case(UseCaseRecord.of(self.row.use_case)) if self.row.use_case else None

    @strawberry.field
    def recipe(self) -> CustomRecipeType | None:
        return to_gql_recipe(RecipeRecord.of(self.row.recipe)) if self.row.recipe else None

    @strawberry.field
    def details(self) -> JobDetails | None:
        return JobDetails(job=self.row)

    @strawberry.field
    async def metrics(self, info: Info[Context, None]) -> list[JobMetricPoint]:
        rows = await info.context.loaders.load(METRICS, self.row.id)
        return [JobMetricPoint(step=m.step, values=m.values, created_at=epoch(m.created_at) or 0) for m in rows]

    @strawberry.field(description="The last lines of the job's log")
    async def logs(self, info: Info[Context, None], tail: int = 100) -> str:
        return await info.context.platform.job_runner.log_tail(self.row, max(1, min(tail, 10_000)))


@strawberry.type(name="JobConnection")
class JobConnection:
    total_count: int
    page_info: PageInfo
    nodes: list[JobType]


@strawberry.input(name="JobArtifactFilter")
class JobArtifactFilter:
    kinds: list[JobArtifactKind]


@strawberry.input(name="ArtifactFilter")
class ArtifactFilter:
    kinds: list[JobArtifactKind] | None = None
    job_id: uuid.UUID | None = None


@strawberry.input(name="ListJobsFilterInput")
class ListJobsFilterInput:
    use_case: IdOrKey | None = None
    kind: list[JobKind] | None = None
    status: list[JobStatus] | None = None
    timerange: TimeRange | None = None
    custom_recipes: list[IdOrKey] | None = None
    artifacts: JobArtifactFilter | None = None


@strawberry.input(name="JobInput")
class JobInput:
    recipe: IdOrKey
    use_case: IdOrKey
    args: JSON
    num_gpus: int
    name: str | None = None
    compute_pool: IdOrKey | None = None


@strawberry.type
class JobQuery:
    @strawberry.field(
        extensions=[requires("use_case:read", use_case="use_case")],
        description="The artifacts of the use case's jobs, newest first (at most 1000)",
    )
    async def artifacts(
        self,
        info: Info[Context, None],
        use_case: IdOrKey,
        filter: ArtifactFilter | None = None,  # noqa: A002
    ) -> list[JobArtifactType]:
        ctx = info.context
        rows = await service.list_artifacts(
            ctx.session,
            ctx.principal,
            use_case,
            kinds=[k.value for k in filter.kinds] if filter and filter.kinds else None,
            job_id=filter.job_id if filter else None,
        )
        return [JobArtifactType(row=a) for a in rows]

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def artifact(self, info: Info[Context, None], use_case: IdOrKey, id: uuid.UUID) -> JobArtifactType:  # noqa: A002
        ctx = info.context
        return JobArtifactType(row=await service.artifact_in_use_case(ctx.session, ctx.principal, use_case, id))

    @strawberry.field(extensions=[requires("use_case:read", use_case=use_case_of(find_job, "job"))])
    async def job(self, info: Info[Context, None], id: uuid.UUID) -> JobType | None:
        ctx = info.context
        return JobType(row=await service.get_job(ctx.session, ctx.principal, id))

    @strawberry.field(extensions=[requires("use_case:read", use_case="filter.use_case", absent="filtered")])
    async def jobs(
        self,
        info: Info[Context, None],
        page: CursorPageInput,
        filter: ListJobsFilterInput | None = None,
        order: list[OrderPair] | None = None,
    ) -> JobConnection:
        ctx = info.context
        if page.offset:
            from adaptive_engine.server.errors import InvalidInput

            raise InvalidInput("offset paging is not supported for jobs: use cursors (after / before)")
        oldest_first = any(o.field == "createdAt" and o.order.value == "ASC" for o in (order or []))
        f = filter or ListJobsFilterInput()
        result, total = await service.list_jobs(
            ctx.session,
            ctx.principal,
            first=page.first,
            last=page.last,
            after=page.after,
            before=page.before,
            use_case=f.use_case,
            kinds=[k.value for k in f.kind] if f.kind else None,
            statuses=[s.value for s in f.status] if f.status else None,
            time_range=f.timerange.bounds if f.timerange else None,
            recipes=list(f.custom_recipes) if f.custom_recipes else None,
            artifact_kinds=[k.value for k in f.artifacts.kinds] if f.artifacts else None,
            oldest_first=oldest_first,
        )
        return JobConnection(
            total_count=total,
            page_info=PageInfo.of(result),
            nodes=[JobType(row=j) for j in result.items],
        )


@strawberry.type
class JobMutation:
    @strawberry.mutation(extensions=[requires("job:run", use_case="input.use_case")])
    async def create_job(self, info: Info[Context, None], input: JobInput) -> JobType:
        ctx = info.context
        job = await service.create_job(
            ctx.session,
            ctx.principal,
            recipe=input.recipe,
            use_case=input.use_case,
            args=input.args,
            name=input.name,
            compute_pool=input.compute_pool,
            num_gpus=input.num_gpus,
            runner=ctx.platform.job_runner,
        )
        return JobType(row=job)

    @strawberry.mutation(extensions=[requires("job:run", use_case=use_case_of(find_job, "job"))])
    async def cancel_job(self, info: Info[Context, None], id: uuid.UUID) -> JobType:
        ctx = info.context
        job = await service.cancel_job(ctx.session, ctx.principal, id, ctx.platform.job_runner)
        return JobType(row=job)
