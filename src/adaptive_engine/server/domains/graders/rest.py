"""REST: grade samples with a grader (users, and recipes through the SDK)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.guard import from_body, route_requires
from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.domains.graders import grading
from adaptive_engine.server.domains.graders.schemas import (
    MAX_SAMPLES_PER_CALL,
    Sample,
    validate_samples,
)
from adaptive_engine.server.platform import platform_of
from adaptive_engine.server.rest.deps import db_session, principal
from adaptive_engine.server.rest.json_input import CheckedRoute

router = APIRouter(prefix="/graders", tags=["graders"], route_class=CheckedRoute)


class SampleIn(BaseModel):
    messages: list[dict[str, Any]]
    completion: str | None = None
    metadata: dict[str, Any] | None = None
    completion_id: str | None = None


class GradeRequest(BaseModel):
    use_case: str
    grader: str
    samples: list[SampleIn] = Field(max_length=MAX_SAMPLES_PER_CALL)


@router.post("/grade", dependencies=[route_requires("use_case:read", use_case=from_body("use_case"))])
async def grade(
    body: GradeRequest,
    request: Request,
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> dict[str, Any]:
    samples = validate_samples(
        [
            Sample(messages=s.messages, completion=s.completion, metadata=s.metadata, completion_id=s.completion_id)
            for s in body.samples
        ]
    )
    results = await grading.grade_samples(
        session, caller, platform_of(request).grading, body.use_case, body.grader, samples
    )
    await session.commit()
    return {"results": [r.as_dict() for r in results]}
