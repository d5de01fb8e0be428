"""A short cache of authenticated principals, so a logging burst does not pay three identity queries
per request.

An entry lives ``ttl`` seconds at most, and dies at once when this process commits a change to API
keys, users, teams, memberships or roles (ORM flushes and ORM-enabled UPDATE/DELETE are watched; the
bump happens after the commit, so no request can re-cache the old state in between). Other replicas,
or another process such as the CLI, see such a change within ``ttl``.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.models import ApiKey, Role, Team, TeamMember, User

WATCHED = (ApiKey, User, Team, TeamMember, Role)
_FLAG = "identity_changed"


class _Generation:
    """Process-wide count of committed identity changes (one per process, like the ORM's own registry)."""

    value = 0
    installed = False


def _mark_flush(session: Session, _context: Any) -> None:
    if any(isinstance(obj, WATCHED) for obj in itertools.chain(session.new, session.dirty, session.deleted)):
        session.info[_FLAG] = True


def _mark_execute(state: Any) -> None:
    if (state.is_update or state.is_delete) and state.bind_mapper is not None and state.bind_mapper.class_ in WATCHED:
        state.session.info[_FLAG] = True


def _after_commit(session: Session) -> None:
    if session.info.pop(_FLAG, False):
        _Generation.value += 1


def _after_rollback(session: Session) -> None:
    session.info.pop(_FLAG, None)


def _install() -> None:
    if _Generation.installed:
        return
    event.listen(Session, "after_flush", _mark_flush)
    event.listen(Session, "do_orm_execute", _mark_execute)
    event.listen(Session, "after_commit", _after_commit)
    event.listen(Session, "after_rollback", _after_rollback)
    _Generation.installed = True


class AuthCache:
    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        _install()
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, int, Principal]] = {}

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def get(self, token: str | None) -> Principal | None:
        if not token:
            return None
        hit = self._entries.get(self._key(token))
        if hit is None:
            return None
        at, generation, principal = hit
        if generation != _Generation.value or time.monotonic() - at > self.ttl:
            self._entries.pop(self._key(token), None)
            return None
        return principal

    def put(self, token: str | None, principal: Principal, generation: int) -> None:
        if not token or generation != _Generation.value:
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[self._key(token)] = (time.monotonic(), generation, principal)

    @staticmethod
    def generation() -> int:
        return _Generation.value
