"""Jobs: runs of a recipe on a compute pool, with progress, metrics, artifacts and produced models."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jsonschema
from sqlalchemy import func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adaptive_engine.server.auth.principal import REGISTRY_PERMISSION, Principal
from adaptive_engine.server.db.base import new_id
from adaptive_engine.server.db.lookup import parse_uuid
from adaptive_engine.server.db.models import ComputePool, Job, JobArtifact, JobMetric
from adaptive_engine.server.db.pagination import Page, paginate
from adaptive_engine.server.db.session import after_commit
from adaptive_engine.server.domains.compute_pools.service import get_pool, job_gpus
from adaptive_engine.server.domains.jobs import states
from adaptive_engine.server.domains.jobs.records import ArtifactRecord, MetricPointRecord
from adaptive_engine.server.domains.jobs.states import FINISHED
from adaptive_engine.server.domains.recipes.service import find_recipe
from adaptive_engine.server.domains.use_cases.service import get_use_case
from adaptive_engine.server.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from adaptive_engine.server.files import copy_chunks
from adaptive_engine.server.jobs.runner import JobRunner
from adaptive_engine.server.jobs.storage import FileStore

ARTIFACT_KINDS = frozenset({"EVALUATION", "CUSTOM", "DATASET", "MODEL"})
MAX_ARTIFACT_BYTES = 10 * 1024 * 1024 * 1024


def check_args(schema: dict[str, Any], args: Any) -> None:
    """Validate job arguments against the recipe's JSON schema; the error names the field and the rule."""
    if not isinstance(args, dict):
        raise InvalidInput("args must be a JSON object")
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(args), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return
    messages, fields = [], []
    for error in errors[:5]:
        field = ".".join(str(p) for p in error.absolute_path) or "(args)"
        messages.append(f"field '{field}': {error.message} (rule: {error.validator})")
        # The path as a list too, so a form can put each message next to its field (a missing field's own).
        path = list(error.absolute_path)
        if error.validator == "required" and isinstance(error.instance, dict):
            path += [name for name in error.validator_value if name not in error.instance][:1]
        fields.append({"path": path, "message": error.message, "rule": error.validator})
    raise InvalidInput("invalid args: " + "; ".join(messages), details={"errors": messages, "fields": fields})


async def job_pool(session: AsyncSession, compute_pool: str | None, num_gpus: int) -> ComputePool:
    """The compute pool a new job asks for (default: local), checked to run jobs with ``num_gpus`` GPUs."""
    if num_gpus < 0:
        raise InvalidInput("num_gpus must be 0 or more")
    pool = await get_pool(session, compute_pool)
    if "JOB" not in pool.capabilities:
        raise InvalidInput(f"compute pool '{pool.key}' does not run jobs")
    if not any(g.status == "ONLINE" for g in pool.harmony_groups):
        raise Unavailable(f"compute pool '{pool.key}' is offline (no harmony group is ONLINE)")
    capacity = job_gpus(pool)
    if num_gpus > capacity:
        raise InvalidInput(
            f"num_gpus {num_gpus} exceeds the job partition of compute pool '{pool.key}' ({capacity} GPUs)"
        )
    return pool


async def create_job(
    session: AsyncSession,
    principal: Principal,
    *,
    recipe: str,
    use_case: str,
    args: Any,
    name: str | None,
    compute_pool: str | None,
    num_gpus: int,
    runner: JobRunner,
) -> Job:
    target = await get_use_case(session, principal, use_case, "job:run")
    found = await find_recipe(session, target, recipe)
    pool = await job_pool(session, compute_pool, num_gpus)
    args = {} if args is None else args
    check_args(found.json_schema or {}, args)
    if name is not None and not name.strip():
        raise InvalidInput("a job's name must not be empty")
    return await queue_job(
        session,
        principal,
        pool,
        name=name or f"{found.key}-{uuid.uuid4().hex[:6]}",
        kind=found.job_kind,
        code=(found.path, found.content_hash),
        args=args,
        num_gpus=num_gpus,
        use_case_id=target.id,
        recipe_id=found.id,
        runner=runner,
    )


async def queue_job(
    session: AsyncSession,
    principal: Principal,
    pool: ComputePool,
    *,
    name: str,
    kind: str,
    code: tuple[str, str],
    args: dict[str, Any],
    num_gpus: int,
    use_case_id: uuid.UUID | None = None,
    recipe_id: uuid.UUID | None = None,
    secret: str | None = None,
    runner: JobRunner,
) -> Job:
    """A PENDING job row for the runner to pick up, woken once the row is committed rather than at its next poll;
    ``code`` is (its folder in the file store, its hash). Callers check their arguments and the caller's rights
    first."""
    path, content_hash = code
    job = Job(
        name=name,
        use_case_id=use_case_id,
        recipe_id=recipe_id,
        recipe_hash=content_hash,
        recipe_path=path,
        kind=kind,
        status="PENDING",
        args=args,
        secret=secret,
        num_gpus=num_gpus,
        compute_pool_id=pool.id,
        created_by_id=principal.user_id,
    )
    session.add(job)
    await session.flush()
    await session.refresh(job, ["use_case", "recipe", "created_by"])
    after_commit(session, runner.wake)
    return job


async def _job(session: AsyncSession, job_id: str | uuid.UUID) -> Job:
    as_uuid = parse_uuid(job_id)
    job = await session.get(Job, as_uuid) if as_uuid else None
    if job is None:
        raise NotFound(f"job '{job_id}' not found")
    return job


async def get_job(
    session: AsyncSession, principal: Principal, job_id: str | uuid.UUID, permission: str = "use_case:read"
) -> Job:
    job = await _job(session, job_id)
    await principal.require_job(session, permission, job, f"job '{job_id}'")
    return job


async def artifacts_of(session: AsyncSession, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[ArtifactRecord]]:
    """Each job's artifacts, oldest first."""
    query = (
        select(JobArtifact).where(JobArtifact.job_id.in_(job_ids)).order_by(JobArtifact.created_at, JobArtifact.name)
    )
    out: dict[uuid.UUID, list[ArtifactRecord]] = {}
    for artifact in (await session.execute(query)).scalars():
        out.setdefault(artifact.job_id, []).append(ArtifactRecord.of(artifact))
    return out


async def metrics_of(session: AsyncSession, job_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[MetricPointRecord]]:
    """Each job's metric points, by step."""
    query = select(JobMetric).where(JobMetric.job_id.in_(job_ids)).order_by(JobMetric.step, JobMetric.created_at)
    out: dict[uuid.UUID, list[MetricPointRecord]] = {}
    for point in (await session.execute(query)).scalars():
        out.setdefault(point.job_id, []).append(MetricPointRecord.of(point))
    return out


# At most this many artifacts in one answer of ``list_artifacts`` (newest first).
MAX_ARTIFACTS = 1000


async def list_artifacts(
    session: AsyncSession,
    principal: Principal,
    use_case: str,
    *,
    kinds: list[str] | None = None,
    job_id: uuid.UUID | None = None,
) -> list[JobArtifact]:
    """The artifacts of the use case's jobs, newest first; ``kinds`` / ``job_id`` narrow them."""
    target = await get_use_case(session, principal, use_case, "use_case:read")
    query = (
        select(JobArtifact)
        .join(Job, Job.id == JobArtifact.job_id)
        .where(Job.use_case_id == target.id)
        .order_by(JobArtifact.created_at.desc(), JobArtifact.id.desc())
        .limit(MAX_ARTIFACTS)
    )
    if kinds:
        query = query.where(JobArtifact.kind.in_(kinds))
    if job_id is not None:
        query = query.where(JobArtifact.job_id == job_id)
    return list((await session.execute(query)).scalars())


async def artifact_in_use_case(
    session: AsyncSession, principal: Principal, use_case: str, artifact_id: uuid.UUID
) -> JobArtifact:
    """An artifact of one of the use case's jobs (NotFound for another use case's, as for a missing one)."""
    target = await get_use_case(session, principal, use_case, "use_case:read")
    found = (
        await session.execute(
            select(JobArtifact)
            .join(Job, Job.id == JobArtifact.job_id)
            .where(JobArtifact.id == artifact_id, Job.use_case_id == target.id)
        )
    ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"artifact '{artifact_id}' not found in use case '{target.key}'")
    return found


async def list_jobs(
    session: AsyncSession,
    principal: Principal,
    *,
    first: int | None,
    last: int | None,
    after: str | None,
    before: str | None,
    use_case: str | None = None,
    kinds: list[str] | None = None,
    statuses: list[str] | None = None,
    time_range: tuple[datetime, datetime] | None = None,
    recipes: list[str] | None = None,
    artifact_kinds: list[str] | None = None,
    oldest_first: bool = False,
) -> tuple[Page[Job], int]:
    query = select(Job)
    if use_case:
        target = await get_use_case(session, principal, use_case)
        query = query.where(Job.use_case_id == target.id)
        if recipes:
            ids = [(await find_recipe(session, target, r)).id for r in recipes]
            query = query.where(Job.recipe_id.in_(ids))
    elif recipes:
        raise InvalidInput("filtering by recipe needs a use case")
    shown = principal.sees_use_case(Job.use_case_id)
    if principal.has_global(REGISTRY_PERMISSION) and principal.job_id is None:
        shown = or_(shown, Job.use_case_id.is_(None))  # the registry's model conversions
    query = query.where(shown)
    if kinds:
        query = query.where(Job.kind.in_(kinds))
    if statuses:
        query = query.where(Job.status.in_(statuses))
    if time_range:
        query = query.where(Job.created_at >= time_range[0], Job.created_at <= time_range[1])
    if artifact_kinds:
        query = query.where(Job.id.in_(select(JobArtifact.job_id).where(JobArtifact.kind.in_(artifact_kinds))))
    total = (await session.execute(select(func.count()).select_from(query.subquery()))).scalar_one()
    page = await paginate(
        session, query, Job, first=first, last=last, after=after, before=before, newest_first=not oldest_first
    )
    return page, int(total)


async def cancel_job(session: AsyncSession, principal: Principal, job_id: str | uuid.UUID, runner: JobRunner) -> Job:
    job = await get_job(session, principal, job_id, "job:run")
    if job.status in FINISHED:
        raise Conflict(f"job '{job.id}' is already {job.status.lower()}")
    states.cancel(job)
    await session.flush()
    job_id_, kind = job.id, job.kind
    after_commit(session, lambda: runner.cancel_soon(job_id_, kind))
    return job


# -- following a job's log ------------------------------------------------------------------------------
LOG_READ_BYTES = 64 * 1024
LOG_POLL_S = 0.5
# How often a follower's key or session and its access to the job are checked again.
LOG_RECHECK_S = 5.0


@dataclass(frozen=True)
class LogEvent:
    # "log": ``data`` is text, ``offset`` the log's byte offset after it (where a reconnect resumes);
    # "status": the job's status and progress changed; "end": the job ended and its log is read to the end;
    # "idle": nothing new this round.
    kind: str
    data: Any
    offset: int | None = None


async def tail_start(runner: JobRunner, job: Job, lines: int) -> int:
    """The byte offset where the log's last ``lines`` lines begin (within its last LOG_READ_BYTES)."""
    data, size = await runner.log_bytes(job, -LOG_READ_BYTES, LOG_READ_BYTES)
    begin = size - len(data)
    if lines == 0:
        return size
    cut = len(data) - 1 if data.endswith(b"\n") else len(data)
    for _ in range(lines):
        cut = data.rfind(b"\n", 0, cut)
        if cut < 0:
            # Fewer lines than asked: all of them, unless the window starts inside a line.
            return begin if begin == 0 else begin + data.find(b"\n") + 1
    return begin + cut + 1


async def follow_log(
    sessionmaker: async_sessionmaker[AsyncSession],
    runner: JobRunner,
    job_id: uuid.UUID,
    offset: int,
    recheck: Callable[[AsyncSession], Awaitable[Any]],
) -> AsyncIterator[LogEvent]:
    """The job's log from byte ``offset`` as it grows, whole lines at a time while the job runs, with its
    status as it changes, until the job has ended and its log is read to the end. ``recheck`` (the caller's
    access, asked again every LOG_RECHECK_S) raising ends the follow with that error."""
    last_status: tuple[str, float | None, str | None] | None = None
    checked = time.monotonic()
    while True:
        async with sessionmaker() as session:
            if time.monotonic() - checked >= LOG_RECHECK_S:
                await recheck(session)
                checked = time.monotonic()
            job = await _job(session, job_id)
            status = (job.status, job.progress, job.progress_message)
            finished = job.status in FINISHED
        if status != last_status:
            last_status = status
            yield LogEvent("status", {"status": status[0], "progress": status[1], "message": status[2]})
        # Read what the log holds now; once the job has ended, nothing more will come.
        while True:
            data, _size = await runner.log_bytes(job, offset, LOG_READ_BYTES)
            whole = data.rfind(b"\n") + 1
            if not finished and (whole or len(data) < LOG_READ_BYTES):
                data = data[:whole]  # a line being written is sent once it is whole
            if not data:
                break
            offset += len(data)
            yield LogEvent("log", data.decode("utf-8", errors="replace"), offset)
        if finished:
            yield LogEvent("end", {"status": job.status}, offset)
            return
        yield LogEvent("idle", None)  # lets the reader keep a quiet connection alive
        await asyncio.sleep(LOG_POLL_S)


# -- what a running job reports -------------------------------------------------------------------------
async def running_job(session: AsyncSession, principal: Principal, job_id: str) -> Job:
    job = await _job(session, job_id)
    if principal.job_id is not None and principal.job_id != job.id:
        raise PermissionDenied("this key belongs to another job")
    await principal.require_job(session, "job:run", job, f"job '{job_id}'")
    if job.status != "RUNNING":
        raise Conflict(f"job '{job.id}' is {job.status.lower()}, not running")
    return job


async def report_progress(
    session: AsyncSession, principal: Principal, job_id: str, progress: float, message: str | None
) -> Job:
    if not 0.0 <= progress <= 1.0:
        raise InvalidInput("progress must be between 0 and 1")
    job = await running_job(session, principal, job_id)
    job.progress = progress
    job.progress_message = message
    await session.flush()
    return job


async def log_metrics(
    session: AsyncSession, principal: Principal, job_id: str, step: int, values: dict[str, float]
) -> None:
    job = await running_job(session, principal, job_id)
    if not values:
        raise InvalidInput("values must name at least one metric")
    session.add(JobMetric(job_id=job.id, step=step, values=values))
    await session.flush()


async def save_artifact(
    session: AsyncSession,
    principal: Principal,
    store: FileStore,
    *,
    job_id: str,
    name: str,
    kind: str,
    metadata: dict[str, Any],
    chunks: AsyncIterator[bytes],
) -> JobArtifact:
    job = await running_job(session, principal, job_id)
    kind = (kind or "CUSTOM").upper()
    if kind not in ARTIFACT_KINDS:
        raise InvalidInput(f"artifact kind must be one of {', '.join(sorted(ARTIFACT_KINDS))}")
    if not name or len(name) > 300:
        raise InvalidInput("an artifact needs a name of at most 300 characters")
    artifact_id = new_id()
    temp = store.temp_path()
    try:
        size = await copy_chunks(chunks, temp, MAX_ARTIFACT_BYTES, "artifact is larger than 10 GB")
        relative = f"artifacts/{job.id}/{artifact_id}"
        store.place(temp, relative)
    finally:
        temp.unlink(missing_ok=True)
    artifact = JobArtifact(
        id=artifact_id,
        job_id=job.id,
        name=name,
        kind=kind,
        status="READY",
        path=relative,
        uri=f"/api/v1/artifacts/{artifact_id}/download",
        size_bytes=size,
        artifact_metadata=metadata,
    )
    session.add(artifact)
    await session.flush()
    return artifact


async def get_artifact(session: AsyncSession, principal: Principal, artifact_id: str) -> tuple[JobArtifact, Job]:
    as_uuid = parse_uuid(artifact_id)
    artifact = await session.get(JobArtifact, as_uuid) if as_uuid else None
    if artifact is None:
        raise NotFound(f"artifact '{artifact_id}' not found")
    job = await _job(session, artifact.job_id)
    await principal.require_job(session, "use_case:read", job, f"artifact '{artifact_id}'")
    return artifact, job


# -- guard targets (server/auth/guard.py) ----------------------------------------------------------------
async def find_job(session: AsyncSession, value: str | uuid.UUID) -> Job | None:
    as_uuid = parse_uuid(value)
    return await session.get(Job, as_uuid) if as_uuid else None


async def find_artifact(session: AsyncSession, value: str | uuid.UUID) -> Job | None:
    """The job of an artifact (what owns it, with ``use_case_id``)."""
    as_uuid = parse_uuid(value)
    artifact = await session.get(JobArtifact, as_uuid) if as_uuid else None
    return await session.get(Job, artifact.job_id) if artifact else None
