"""REST: sign in to the console (an API key for a session cookie), see the session, sign out."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth import sessions
from adaptive_engine.server.auth.guard import route_requires
from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.models import User
from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.platform import platform_of
from adaptive_engine.server.rest.deps import db_session, principal
from adaptive_engine.server.rest.json_input import CheckedRoute

router = APIRouter(prefix="/auth", tags=["auth"], route_class=CheckedRoute)


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


async def _user(session: AsyncSession, caller: Principal) -> dict[str, Any]:
    user = await session.get(User, caller.user_id)
    return {"id": str(caller.user_id), "email": caller.email, "name": user.name if user is not None else ""}


def _session_body(token: str, expires_at: Any) -> dict[str, Any]:
    return {
        "csrf_token": sessions.csrf_token_for(token),
        "csrf_header": sessions.CSRF_HEADER,
        "expires_at": expires_at.isoformat(),
    }


@router.post("/session", dependencies=[route_requires(None)], status_code=201)
async def sign_in(
    request: Request, session: AsyncSession = Depends(db_session), caller: Principal = Depends(principal)
) -> JSONResponse:
    key = _bearer(request)
    if key is None:
        raise InvalidInput("sign in with an API key: send 'Authorization: Bearer <key>'")
    hours = platform_of(request).settings.console_session_hours
    token, row = await sessions.open_session(session, key, timedelta(hours=hours))
    body = {"authenticated_by": "session", "user": await _user(session, caller), **_session_body(token, row.expires_at)}
    await session.commit()
    response = JSONResponse(body, status_code=201)
    secure = request.url.scheme == "https"
    response.set_cookie(
        sessions.COOKIE, token, max_age=int(hours * 3600), path="/", httponly=True, samesite="strict", secure=secure
    )
    # A readable marker with no secret in it: the page knows it may have a session without asking (and
    # without a 401 in the browser's console on every signed-out visit).
    response.set_cookie(
        sessions.MARKER_COOKIE, "1", max_age=int(hours * 3600), path="/", samesite="strict", secure=secure
    )
    return response


@router.get("/session", dependencies=[route_requires(None)])
async def who_am_i(
    request: Request, session: AsyncSession = Depends(db_session), caller: Principal = Depends(principal)
) -> dict[str, Any]:
    """The caller, and for a console session its CSRF token (a reloaded page asks for it here)."""
    body: dict[str, Any] = {
        "authenticated_by": "api_key",
        "user": await _user(session, caller),
        "csrf_token": None,
        "csrf_header": sessions.CSRF_HEADER,
        "expires_at": None,
    }
    token = getattr(request.state, sessions.SESSION_STATE, None)
    if token is not None:
        row = await sessions.current_session(session, token)
        if row is not None:
            body.update(authenticated_by="session", **_session_body(token, row.expires_at))
    return body


@router.delete("/session", dependencies=[route_requires(None)])
async def sign_out(request: Request, session: AsyncSession = Depends(db_session)) -> JSONResponse:
    """With the cookie: end this session. With a Bearer key: end every session opened with that key."""
    token = getattr(request.state, sessions.SESSION_STATE, None)
    if token is not None:
        ended = await sessions.close_session(session, token)
    else:
        ended = await sessions.close_sessions_of_key(session, _bearer(request) or "")
    await session.commit()
    response = JSONResponse({"ended": ended})
    if token is not None:
        secure = request.url.scheme == "https"
        response.delete_cookie(sessions.COOKIE, path="/", httponly=True, samesite="strict", secure=secure)
        response.delete_cookie(sessions.MARKER_COOKIE, path="/", samesite="strict", secure=secure)
    return response
