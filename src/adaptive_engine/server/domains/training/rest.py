"""REST for running training/evaluation jobs: local weights of a model, and evaluation completions."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.guard import from_path, route_requires
from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.domains.interactions.schemas import AddInteractionsRequest
from adaptive_engine.server.domains.jobs.service import find_job
from adaptive_engine.server.domains.training import service
from adaptive_engine.server.platform import platform_of
from adaptive_engine.server.rest.deps import db_session, principal
from adaptive_engine.server.rest.json_input import CheckedRoute

router = APIRouter(tags=["training"], route_class=CheckedRoute)


@router.get(
    "/jobs/{job_id}/model-weights/{model}",
    dependencies=[route_requires("job:run", use_case=from_path("job_id", find_job, "job"))],
)
async def model_weights(
    job_id: str,
    model: str,
    request: Request,
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> dict[str, Any]:
    return await service.model_weights(session, caller, platform_of(request).settings, job_id, model)


@router.post(
    "/jobs/{job_id}/evaluation-completions",
    status_code=201,
    dependencies=[route_requires("job:run", use_case=from_path("job_id", find_job, "job"))],
)
async def evaluation_completions(
    job_id: str,
    body: list[AddInteractionsRequest],
    request: Request,
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> dict[str, Any]:
    ids = await service.record_evaluation(session, caller, platform_of(request).ingest, job_id, body)
    return {"completion_ids": [str(i) for i in ids]}
