"""GraphQL of jobs and their artifacts."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import requires, use_case_of
from adaptive_engine.server.domains.identity.types import UserType, to_gql_user
from adaptive_engine.server.domains.jobs import service
from adaptive_engine.server.domains.jobs.records import ArtifactRecord, EvalResultRecord, JobRecord
from adaptive_engine.server.domains.jobs.service import find_job
from adaptive_engine.server.domains.recipes.graphql import CustomRecipeType, to_gql_recipe
from adaptive_engine.server.domains.use_cases.graphql import UseCaseType, to_gql_use_case
from adaptive_engine.server.graphql.common import (
    CursorPageInput,
    OrderPair,
    PageInfo,
    TimeRange,
)
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.loaders import lookup
from adaptive_engine.server.graphql.scalars import JSON, IdOrKey
from adaptive_engine.server.timestamps import epoch


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


@strawberry.type(name="JobArtifact")
class JobArtifactType:
    id: uuid.UUID
    name: str
    kind: JobArtifactKind
    status: JobArtifactStatus
    uri: str | None
    metadata: JSON
    size_bytes: int
    created_at: int
    byproducts: ArtifactByproducts | None


def to_gql_artifact(artifact: ArtifactRecord) -> JobArtifactType:
    byproducts: Any = None
    if artifact.kind == "EVALUATION":
        byproducts = EvaluationByproducts(eval_results=[_eval_result(artifact, r) for r in artifact.eval_results])
    elif artifact.kind == "MODEL":
        byproducts = ModelByproducts(model_id=artifact.model_id)
    elif artifact.kind == "DATASET":
        byproducts = DatasetByproducts(dataset_id=artifact.dataset_id)
    return JobArtifactType(
        id=artifact.id,
        name=artifact.name,
        kind=JobArtifactKind(artifact.kind),
        status=JobArtifactStatus(artifact.status),
        uri=artifact.uri,
        metadata=JSON(artifact.metadata),
        size_bytes=artifact.size_bytes,
        created_at=epoch(artifact.created_at) or 0,
        byproducts=byproducts,
    )


def _eval_result(artifact: ArtifactRecord, result: EvalResultRecord) -> EvaluationResult:
    return EvaluationResult(
        mean=result.mean,
        min=result.min,
        max=result.max,
        stddev=result.stddev,
        count=result.count,
        sum=result.sum,
        feedback_count=result.feedback_count,
        job_id=artifact.job_id,
        artifact_id=artifact.id,
        model_service=EvalResultModelService(key=result.model_key, name=result.model_name),
        metric=EvalResultMetric(key=result.metric_key, name=result.metric_name),
    )


# The artifacts and metric points of each job, for all the jobs of a page at once.
ARTIFACTS = lookup(service.artifacts_of, missing=list)
METRICS = lookup(service.metrics_of, missing=list)


async def _artifacts(root: JobDetails, info: Info[Context, None]) -> list[JobArtifactType]:
    return [to_gql_artifact(a) for a in await info.context.loaders.load(ARTIFACTS, root.job_id)]


@strawberry.type(name="JobDetails")
class JobDetails:
    args: JSON
    recipe_hash: str
    artifacts: list[JobArtifactType] = strawberry.field(resolver=_artifacts)
    job_id: strawberry.Private[uuid.UUID]


@strawberry.type(name="JobMetricPoint")
class JobMetricPoint:
    step: int
    values: JSON
    created_at: int


@strawberry.type(name="Job")
class JobType:
    id: uuid.UUID
    name: str
    status: JobStatus
    kind: JobKind
    created_at: int
    created_by: UserType | None
    started_at: int | None
    ended_at: int | None
    duration_ms: int | None
    progress: float
    progress_message: str | None
    error: str | None
    num_gpus: int
    stages: list[JobStage]
    use_case: UseCaseType | None
    recipe: CustomRecipeType | None
    details: JobDetails | None
    record: strawberry.Private[JobRecord]

    @strawberry.field
    async def metrics(self, info: Info[Context, None]) -> list[JobMetricPoint]:
        points = await info.context.loaders.load(METRICS, self.id)
        return [JobMetricPoint(step=m.step, values=m.values, created_at=epoch(m.created_at) or 0) for m in points]

    @strawberry.field(description="The last lines of the job's log")
    async def logs(self, info: Info[Context, None], tail: int = 100) -> str:
        return await info.context.platform.job_runner.log_tail(self.record, max(1, min(tail, 10_000)))


def to_gql_job(job: JobRecord) -> JobType:
    info: Any = None
    if job.kind == "TRAINING":
        info = TrainingJobStageOutput()
    elif job.kind == "EVALUATION":
        info = EvalJobStageOutput()
    stage = JobStage(
        name=job.stage_name,
        status=STAGE_STATUS[job.status],
        info=info,
        progress=job.progress,
        message=job.progress_message,
    )
    return JobType(
        id=job.id,
        name=job.name,
        status=JobStatus(job.status),
        kind=JobKind(job.kind),
        created_at=epoch(job.created_at) or 0,
        created_by=to_gql_user(job.created_by) if job.created_by else None,
        started_at=epoch(job.started_at),
        ended_at=epoch(job.ended_at),
        duration_ms=job.duration_ms(),
        progress=job.progress,
        progress_message=job.progress_message,
        error=job.error,
        num_gpus=job.num_gpus,
        stages=[stage],
        use_case=to_gql_use_case(job.use_case) if job.use_case else None,
        recipe=to_gql_recipe(job.recipe) if job.recipe else None,
        details=JobDetails(args=JSON(job.args), recipe_hash=job.recipe_hash, job_id=job.id),
        record=job,
    )


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
        return [to_gql_artifact(ArtifactRecord.of(a)) for a in rows]

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def artifact(self, info: Info[Context, None], use_case: IdOrKey, id: uuid.UUID) -> JobArtifactType:  # noqa: A002
        ctx = info.context
        artifact = await service.artifact_in_use_case(ctx.session, ctx.principal, use_case, id)
        return to_gql_artifact(ArtifactRecord.of(artifact))

    @strawberry.field(extensions=[requires("use_case:read", use_case=use_case_of(find_job, "job"))])
    async def job(self, info: Info[Context, None], id: uuid.UUID) -> JobType | None:
        ctx = info.context
        return to_gql_job(JobRecord.of(await service.get_job(ctx.session, ctx.principal, id)))

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
            nodes=[to_gql_job(JobRecord.of(j)) for j in result.items],
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
        return to_gql_job(JobRecord.of(job))

    @strawberry.mutation(extensions=[requires("job:run", use_case=use_case_of(find_job, "job"))])
    async def cancel_job(self, info: Info[Context, None], id: uuid.UUID) -> JobType:
        ctx = info.context
        job = await service.cancel_job(ctx.session, ctx.principal, id, ctx.platform.job_runner)
        return to_gql_job(JobRecord.of(job))
