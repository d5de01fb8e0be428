"""Console sessions: an API key exchanged for a cookie the browser keeps and JavaScript cannot read.

- ``POST /api/v1/auth/session`` with ``Authorization: Bearer <key>`` opens a session: a random id in an
  HttpOnly, SameSite=Strict cookie (Secure over https); the database keeps its SHA-256 and the key it came
  from. The session works while that key does (revoked or deleted: it is gone) and until it expires or the
  browser signs out (``DELETE``).
- Every API route accepts the cookie where it accepts ``Authorization: Bearer``; a Bearer header wins.
- CSRF: a request made with the cookie that may change something (any REST method but GET/HEAD/OPTIONS,
  any GraphQL mutation) must carry ``X-CSRF-Token``. The token is an HMAC of the session id, returned at
  sign-in and by ``GET /api/v1/auth/session``; the server recomputes it from the cookie, so it is bound to
  the session without being stored. Why not a double-submit cookie: a cookie can be planted by a sibling
  subdomain or a plain-http response (cookie tossing), and a token only a page of our origin can read
  (a same-origin GET answer) cannot. SameSite=Strict already keeps the cookie off cross-site requests; the
  token is the second lock, and it also covers same-site pages that are not ours.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import Any

from graphql import OperationType
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.requests import cookie_parser
from starlette.types import Scope

from adaptive_engine.server.auth.cache import AuthCache
from adaptive_engine.server.auth.keys import hash_api_key
from adaptive_engine.server.auth.principal import Principal, authenticate, principal_for_user
from adaptive_engine.server.db.models import ApiKey, ConsoleSession
from adaptive_engine.server.db.session import rowcount
from adaptive_engine.server.errors import PermissionDenied, Unauthenticated
from adaptive_engine.server.timestamps import utcnow

COOKIE = "ae_session"
# Readable by the page, holds nothing: "a session may exist" (see session_routes.sign_in).
MARKER_COOKIE = "ae_signed_in"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
GRAPHQL_PATH = "/api/graphql"
# Set on the request's scope state: the session id of a cookie-authenticated request, and whether a request
# that needed no CSRF token in the middleware (a GraphQL POST) came without a valid one.
SESSION_STATE = "console_session"
CSRF_MISSING_STATE = "csrf_missing"
_CSRF_CONTEXT = b"adaptive-engine console csrf"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token_for(token: str) -> str:
    return hmac.new(token.encode(), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return value.decode("latin-1")
    return None


def bearer_token(scope: Scope) -> str | None:
    raw = _header(scope, b"authorization")
    if raw is None:
        return None
    scheme, _, token = raw.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else None


async def authenticate_scope(session: AsyncSession, scope: Scope) -> Principal:
    """The caller of a request read afresh, bypassing the auth cache: long answers (a followed job log)
    ask again now and then, so that they end with the key or session that opened them."""
    token = bearer_token(scope)
    if token is None and (cookie := session_cookie(scope)) is not None:
        return await authenticate_session(session, cookie)
    return await authenticate(session, token)


def session_cookie(scope: Scope) -> str | None:
    raw = _header(scope, b"cookie")
    return cookie_parser(raw).get(COOKIE) or None if raw else None


def _csrf_ok(scope: Scope, token: str) -> bool:
    sent = _header(scope, CSRF_HEADER.lower().encode())
    return sent is not None and hmac.compare_digest(sent.encode("latin-1"), csrf_token_for(token).encode())


async def _active(session: AsyncSession, token: str) -> ConsoleSession | None:
    """The session with this id whose key still works and which has not expired."""
    return (
        await session.execute(
            select(ConsoleSession)
            .join(ApiKey, ApiKey.id == ConsoleSession.api_key_id)
            .where(
                ConsoleSession.token_hash == token_hash(token),
                ApiKey.revoked_at.is_(None),
                ConsoleSession.expires_at > utcnow(),
            )
        )
    ).scalar_one_or_none()


async def authenticate_session(session: AsyncSession, token: str) -> Principal:
    row = await _active(session, token)
    if row is None:
        raise Unauthenticated("console session expired or signed out: sign in again")
    return await principal_for_user(session, row.api_key.user)


async def principal_from_cookie(
    sessionmaker: async_sessionmaker[AsyncSession], cache: AuthCache | None, scope: Scope, token: str
) -> Principal:
    """The caller of a request that carries the session cookie and no Bearer header (the auth middleware's
    one hook). Raises Unauthenticated for a dead session, PermissionDenied for a REST write without its
    CSRF token; a GraphQL POST without one is marked, and :func:`require_csrf` refuses its mutations."""

    async def read() -> Principal:
        async with sessionmaker() as session:
            return await authenticate_session(session, token)

    cache_key = f"session:{token}"  # never equal to a key: those have no colon
    principal = cache.get(cache_key) if cache is not None else None
    if principal is None:
        principal = await (cache.load(cache_key, read) if cache is not None else read())
    request_state = scope.setdefault("state", {})
    request_state[SESSION_STATE] = token
    if scope["method"] not in SAFE_METHODS and not _csrf_ok(scope, token):
        if scope["path"] != GRAPHQL_PATH:
            raise PermissionDenied(f"a request made with the console session must send its {CSRF_HEADER} header")
        request_state[CSRF_MISSING_STATE] = True
    return principal


def require_csrf(context: Any, info: Any) -> None:
    """Refuse a GraphQL mutation made with the session cookie without the CSRF header (called by the guard
    of every root field; queries pass)."""
    request = getattr(context, "request", None)
    if request is None or info.operation.operation is not OperationType.MUTATION:
        return
    if request.scope.get("state", {}).get(CSRF_MISSING_STATE):
        raise PermissionDenied(f"a mutation made with the console session must send its {CSRF_HEADER} header")


async def open_session(session: AsyncSession, key: str, lifetime: timedelta) -> tuple[str, ConsoleSession]:
    """A new session for the API key ``key`` (already authenticated): (the id for the cookie, its row)."""
    row = (
        await session.execute(select(ApiKey).where(ApiKey.key_hash == hash_api_key(key), ApiKey.revoked_at.is_(None)))
    ).scalar_one_or_none()
    if row is None:
        raise Unauthenticated("invalid API key")
    if row.job_id is not None:
        raise PermissionDenied("a job's API key cannot open a console session")
    # Expired sessions are swept here: sign-ins are rare, and nothing reads an expired row.
    await session.execute(delete(ConsoleSession).where(ConsoleSession.expires_at <= utcnow()))
    token = secrets.token_urlsafe(32)
    console_session = ConsoleSession(token_hash=token_hash(token), api_key_id=row.id, expires_at=utcnow() + lifetime)
    session.add(console_session)
    await session.flush()
    await session.refresh(console_session, ["api_key"])
    return token, console_session


async def current_session(session: AsyncSession, token: str) -> ConsoleSession | None:
    return await _active(session, token)


async def close_session(session: AsyncSession, token: str) -> int:
    result = await session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash == token_hash(token)))
    return rowcount(result) or 0


async def close_sessions_of_key(session: AsyncSession, key: str) -> int:
    """Sign out every browser that signed in with this API key."""
    key_id = select(ApiKey.id).where(ApiKey.key_hash == hash_api_key(key)).scalar_subquery()
    result = await session.execute(delete(ConsoleSession).where(ConsoleSession.api_key_id == key_id))
    return rowcount(result) or 0
