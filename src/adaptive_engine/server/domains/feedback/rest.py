"""REST: POST /api/v1/feedback, /api/v1/comparison and /api/v1/outcome."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.guard import from_body, route_requires
from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.domains.feedback import service
from adaptive_engine.server.domains.interactions.schemas import (
    AddComparisonRequest,
    AddFeedbackRequest,
    AddOutcomeRequest,
    ComparisonOutput,
    FeedbackOutput,
    OutcomeOutput,
)
from adaptive_engine.server.rest.deps import db_session, principal

router = APIRouter(tags=["feedback"])


def _user(value: object) -> str | None:
    return str(value) if value is not None else None


@router.post("/feedback", status_code=201, dependencies=[route_requires("feedback:write")])
async def add_feedback(
    body: AddFeedbackRequest,
    request: Request,
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> FeedbackOutput:
    feedback_id = await service.log_metric(
        session,
        caller,
        request.app.state.ingest,
        completion_id=body.completion_id,
        metric=body.metric,
        value=body.value,
        user=_user(body.user_id),
        reason=body.reason,
        details=body.details,
    )
    return FeedbackOutput(feedback_id=feedback_id)


@router.post(
    "/comparison", status_code=201, dependencies=[route_requires("feedback:write", use_case=from_body("use_case"))]
)
async def add_comparison(
    body: AddComparisonRequest,
    request: Request,
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> ComparisonOutput:
    comparison_id = await service.log_preference(
        session,
        caller,
        request.app.state.ingest,
        metric=body.metric,
        preferred=body.preferred_completion,
        other=body.other_completion,
        messages=body.messages,
        prompt=body.prompt,
        tied=body.tied,
        use_case=body.use_case,
        user=_user(body.user_id),
    )
    return ComparisonOutput(comparison_id=comparison_id)


@router.post("/outcome", status_code=201, dependencies=[route_requires("feedback:write")])
async def add_outcome(
    body: AddOutcomeRequest,
    request: Request,
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> OutcomeOutput:
    outcome_id = await service.log_outcome(
        session,
        caller,
        request.app.state.ingest,
        session_id=body.session_id,
        metric=body.metric,
        value=body.value,
        user=_user(body.user_id),
    )
    return OutcomeOutput(outcome_id=outcome_id)
