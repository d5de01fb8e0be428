"""REST: POST /api/v1/feedback, /api/v1/comparison and /api/v1/outcome."""

from __future__ import annotations

from fastapi import APIRouter, Request

from adaptive_engine.server.auth.guard import Authorized, from_body
from adaptive_engine.server.domains.feedback import service
from adaptive_engine.server.domains.interactions.schemas import (
    AddComparisonRequest,
    AddFeedbackRequest,
    AddOutcomeRequest,
    ComparisonOutput,
    FeedbackOutput,
    OutcomeOutput,
)
from adaptive_engine.server.platform import platform_of
from adaptive_engine.server.rest.json_input import CheckedRoute
from adaptive_engine.server.rest.json_route import json_post

router = APIRouter(tags=["feedback"], route_class=CheckedRoute)


def _user(value: object) -> str | None:
    return str(value) if value is not None else None


@json_post(router, "/feedback", AddFeedbackRequest, permission="feedback:write")
async def add_feedback(request: Request, body: AddFeedbackRequest, auth: Authorized) -> FeedbackOutput:
    feedback_id = await service.log_metric(
        auth.session,
        auth.principal,
        platform_of(request).ingest,
        completion_id=body.completion_id,
        metric=body.metric,
        value=body.value,
        user=_user(body.user_id),
        reason=body.reason,
        details=body.details,
    )
    return FeedbackOutput(feedback_id=feedback_id)


@json_post(router, "/comparison", AddComparisonRequest, permission="feedback:write", use_case=from_body("use_case"))
async def add_comparison(request: Request, body: AddComparisonRequest, auth: Authorized) -> ComparisonOutput:
    comparison_id = await service.log_preference(
        auth.session,
        auth.principal,
        platform_of(request).ingest,
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


@json_post(router, "/outcome", AddOutcomeRequest, permission="feedback:write")
async def add_outcome(request: Request, body: AddOutcomeRequest, auth: Authorized) -> OutcomeOutput:
    outcome_id = await service.log_outcome(
        auth.session,
        auth.principal,
        platform_of(request).ingest,
        session_id=body.session_id,
        metric=body.metric,
        value=body.value,
        user=_user(body.user_id),
    )
    return OutcomeOutput(outcome_id=outcome_id)
