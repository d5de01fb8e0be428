"""REST: POST /api/v1/interactions (one interaction, or a JSON array of them as one batch)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.guard import from_body, route_requires
from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.domains.interactions import service
from adaptive_engine.server.domains.interactions.schemas import AddInteractionsRequest, AddInteractionsResponse
from adaptive_engine.server.rest.deps import db_session, principal

router = APIRouter(tags=["interactions"])


def _out(created: service.CreatedInteraction) -> dict:
    return AddInteractionsResponse(
        completion_id=created.completion_id, session_id=created.session_id, feedback_ids=created.feedback_ids
    ).model_dump(mode="json")


@router.post(
    "/interactions",
    status_code=201,
    response_model=None,
    dependencies=[route_requires("feedback:write", use_case=from_body("use_case"))],
)
async def add_interactions(
    body: AddInteractionsRequest | list[AddInteractionsRequest],
    request: Request,
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> JSONResponse:
    batch = isinstance(body, list)
    bodies = body if isinstance(body, list) else [body]
    created = await service.create_interactions(session, caller, request.app.state.ingest, bodies, batch=batch)
    payload = [_out(c) for c in created] if batch else _out(created[0])
    return JSONResponse(payload, status_code=201)
