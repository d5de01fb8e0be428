"""REST of jobs: what a running job reports (progress, metrics, artifacts, models), its log, and
artifact downloads."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import FileResponse, PlainTextResponse, StreamingResponse
from fastapi.sse import KEEPALIVE_COMMENT, format_sse_event
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.guard import from_path, route_requires
from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.auth.sessions import authenticate_scope
from adaptive_engine.server.domains.jobs import service
from adaptive_engine.server.domains.jobs.service import find_artifact, find_job
from adaptive_engine.server.domains.models import from_jobs
from adaptive_engine.server.errors import DomainError, InvalidInput, NotFound
from adaptive_engine.server.platform import platform_of
from adaptive_engine.server.rest.deps import db_session, principal
from adaptive_engine.server.rest.json_input import CheckedRoute, decode_json

router = APIRouter(tags=["jobs"], route_class=CheckedRoute)


class ProgressBody(BaseModel):
    progress: float = Field(ge=0.0, le=1.0)
    message: str | None = None


class MetricsBody(BaseModel):
    step: int
    values: dict[str, float]


class ModelBody(BaseModel):
    path: str
    key: str
    name: str | None = None
    base_model: str | None = None
    kind: str = "chat"
    attach: bool = True
    metadata: dict[str, Any] = {}


def _metadata(request: Request, text: str) -> dict[str, Any]:
    """The ``metadata`` query parameter of the streamed uploads: a JSON object."""
    meta = decode_json(text, platform_of(request).json_limits, what="metadata")
    if not isinstance(meta, dict):
        raise InvalidInput("metadata must be a JSON object")
    return meta


@router.post(
    "/jobs/{job_id}/progress", dependencies=[route_requires("job:run", use_case=from_path("job_id", find_job, "job"))]
)
async def report_progress(
    job_id: str, body: ProgressBody, session: AsyncSession = Depends(db_session), caller: Principal = Depends(principal)
) -> dict[str, Any]:
    job = await service.report_progress(session, caller, job_id, body.progress, body.message)
    await session.commit()
    return {"id": str(job.id), "progress": job.progress}


@router.post(
    "/jobs/{job_id}/metrics", dependencies=[route_requires("job:run", use_case=from_path("job_id", find_job, "job"))]
)
async def log_metrics(
    job_id: str, body: MetricsBody, session: AsyncSession = Depends(db_session), caller: Principal = Depends(principal)
) -> dict[str, Any]:
    await service.log_metrics(session, caller, job_id, body.step, body.values)
    await session.commit()
    return {"id": job_id, "step": body.step}


@router.post(
    "/jobs/{job_id}/artifacts", dependencies=[route_requires("job:run", use_case=from_path("job_id", find_job, "job"))]
)
async def save_artifact(
    job_id: str,
    request: Request,
    name: str = Query(),
    kind: str = Query("CUSTOM"),
    metadata: str = Query("{}"),
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> dict[str, Any]:
    meta = _metadata(request, metadata)
    artifact = await service.save_artifact(
        session,
        caller,
        platform_of(request).file_store,
        job_id=job_id,
        name=name,
        kind=kind,
        metadata=meta,
        chunks=request.stream(),
    )
    await session.commit()
    return {"id": str(artifact.id), "name": artifact.name, "kind": artifact.kind, "status": artifact.status}


@router.post(
    "/jobs/{job_id}/models", dependencies=[route_requires("job:run", use_case=from_path("job_id", find_job, "job"))]
)
async def register_model(
    job_id: str,
    body: ModelBody,
    request: Request,
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> dict[str, Any]:
    model, artifact = await from_jobs.register_model(
        session,
        caller,
        job_id,
        body.model_dump(),
        store=platform_of(request).file_store,
        jobs_dir=platform_of(request).job_runner.jobs_dir,
    )
    await session.commit()
    return {"id": str(model.id), "key": model.key, "artifact_id": str(artifact.id)}


@router.post(
    "/jobs/{job_id}/models/upload",
    dependencies=[route_requires("job:run", use_case=from_path("job_id", find_job, "job"))],
)
async def upload_model(
    job_id: str,
    request: Request,
    key: str = Query(),
    name: str | None = Query(None),
    base_model: str | None = Query(None),
    kind: str = Query("chat"),
    attach: bool = Query(True),
    metadata: str = Query("{}"),
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> dict[str, Any]:
    meta = _metadata(request, metadata)
    spec = {"key": key, "name": name, "base_model": base_model, "kind": kind, "attach": attach, "metadata": meta}
    model, artifact = await from_jobs.register_uploaded_model(
        session, caller, platform_of(request).file_store, job_id, spec, request.stream()
    )
    await session.commit()
    return {"id": str(model.id), "key": model.key, "artifact_id": str(artifact.id)}


@router.get(
    "/jobs/{job_id}/logs",
    response_class=PlainTextResponse,
    dependencies=[route_requires("use_case:read", use_case=from_path("job_id", find_job, "job"))],
)
async def job_logs(
    job_id: str,
    request: Request,
    tail: int = Query(200, ge=1, le=10_000),
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> PlainTextResponse:
    job = await service.get_job(session, caller, job_id)
    return PlainTextResponse(await platform_of(request).job_runner.log_tail(job, tail))


# A stream with nothing to say still sends a comment now and then, so that proxies keep it open.
KEEPALIVE_S = 15.0


@router.get(
    "/jobs/{job_id}/logs/stream",
    response_class=StreamingResponse,
    dependencies=[route_requires("use_case:read", use_case=from_path("job_id", find_job, "job"))],
)
async def follow_job_log(
    job_id: str,
    request: Request,
    tail: int = Query(200, ge=0, le=10_000),
    last_event_id: str | None = Header(None),
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> StreamingResponse:
    """Server-sent events that follow the job's log until the job ends: ``log`` (new text; its id is the
    byte offset after it, so a reconnecting EventSource resumes where it was), ``status``, then ``end``;
    ``stopped`` when the caller's key or session dies meanwhile. It starts with the last ``tail`` lines."""
    job = await service.get_job(session, caller, job_id)
    runner = platform_of(request).job_runner
    if last_event_id is not None:
        if not last_event_id.isdigit():
            raise InvalidInput("Last-Event-ID must be a byte offset the stream sent")
        offset = int(last_event_id)
    else:
        offset = await service.tail_start(runner, job, tail)
    await session.close()  # the stream opens short sessions of its own

    async def recheck(fresh: AsyncSession) -> None:
        await service.get_job(fresh, await authenticate_scope(fresh, request.scope), job.id)

    async def events() -> AsyncIterator[bytes]:
        follow = service.follow_log(platform_of(request).sessionmaker, runner, job.id, offset, recheck)
        sent = time.monotonic()
        try:
            async for event in follow:
                if event.kind == "idle":
                    if time.monotonic() - sent >= KEEPALIVE_S:
                        sent = time.monotonic()
                        yield KEEPALIVE_COMMENT
                    continue
                sent = time.monotonic()
                offset_id = None if event.offset is None else str(event.offset)
                yield format_sse_event(data_str=json.dumps(event.data), event=event.kind, id=offset_id)
        except DomainError as error:
            yield format_sse_event(data_str=json.dumps({"code": error.code, "message": error.message}), event="stopped")

    return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.get(
    "/artifacts/{artifact_id}/download",
    dependencies=[route_requires("use_case:read", use_case=from_path("artifact_id", find_artifact, "artifact"))],
)
async def download_artifact(
    artifact_id: str,
    request: Request,
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> FileResponse:
    artifact, _job = await service.get_artifact(session, caller, artifact_id)
    if artifact.path is None:
        raise NotFound(f"artifact '{artifact_id}' has no file to download (it is {artifact.uri})")
    path = platform_of(request).file_store.path(artifact.path)
    if not path.is_file():
        raise NotFound(f"the file of artifact '{artifact_id}' is missing")
    return FileResponse(path, media_type="application/octet-stream", filename=artifact.name)
