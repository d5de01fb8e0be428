"""A short cache of authenticated principals, so a logging burst does not pay three identity queries
per request.

An entry lives ``ttl`` seconds at most, and dies at once when this process commits a change to API
keys, users, teams, memberships, roles or use-case shares (see :mod:`adaptive_engine.server.db.changes`;
a principal also memoizes its rights on use cases, which shares decide). Other replicas, or another
process such as the CLI, see such a change within ``ttl``.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db import changes
from adaptive_engine.server.db.models import ApiKey, ConsoleSession, Role, Team, TeamMember, UseCaseShare, User
from adaptive_engine.server.singleflight import SingleFlight

# Console sessions too: a signed-out session stops working at once.
WATCHED = (ApiKey, ConsoleSession, User, Team, TeamMember, Role, UseCaseShare)


class AuthCache:
    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        changes.install()
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, int, Principal]] = {}
        self._flights = SingleFlight()

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
        if generation != self.generation() or time.monotonic() - at > self.ttl:
            self._entries.pop(self._key(token), None)
            return None
        return principal

    def put(self, token: str | None, principal: Principal, generation: int) -> None:
        if not token or generation != self.generation():
            return
        if len(self._entries) >= self.max_entries:
            self._entries.clear()
        self._entries[self._key(token)] = (time.monotonic(), generation, principal)

    async def load(self, token: str | None, authenticate: Callable[[], Awaitable[Principal]]) -> Principal:
        """``authenticate()`` once for all concurrent requests with this key, and cache the result."""

        async def read() -> Principal:
            generation = self.generation()
            principal = await authenticate()
            self.put(token, principal, generation)
            return principal

        if not token:
            return await authenticate()
        return await self._flights.run(self._key(token), read)

    @staticmethod
    def generation() -> int:
        return changes.generation(WATCHED)
