"""REST: POST /api/v1/interactions (one interaction, or a JSON array of them as one batch)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from adaptive_engine.server.auth.guard import Authorized, from_body
from adaptive_engine.server.domains.interactions import service
from adaptive_engine.server.domains.interactions.schemas import (
    AddInteractionsRequest,
    AddInteractionsResponse,
)
from adaptive_engine.server.platform import platform_of
from adaptive_engine.server.rest.json_input import CheckedRoute
from adaptive_engine.server.rest.json_route import json_post

router = APIRouter(tags=["interactions"], route_class=CheckedRoute)


def _out(created: service.CreatedInteraction) -> AddInteractionsResponse:
    return AddInteractionsResponse(
        completion_id=created.completion_id, session_id=created.session_id, feedback_ids=created.feedback_ids
    )


@json_post(
    router,
    "/interactions",
    AddInteractionsRequest | list[AddInteractionsRequest],
    permission="feedback:write",
    use_case=from_body("use_case"),
)
async def add_interactions(
    request: Request, body: AddInteractionsRequest | list[AddInteractionsRequest], auth: Authorized
) -> AddInteractionsResponse | list[AddInteractionsResponse]:
    batch = isinstance(body, list)
    bodies = body if isinstance(body, list) else [body]
    created = await service.create_interactions(
        auth.session, auth.principal, platform_of(request).ingest, bodies, batch=batch
    )
    return [_out(c) for c in created] if batch else _out(created[0])
