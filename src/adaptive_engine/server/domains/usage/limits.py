"""Limits on API keys, users and use cases, enforced on the data plane; API-key scope.

A request served by the gateway is admitted by :meth:`UsageLimiter.admit` once its target is known: the key's
scope first (expiry, model allow-list, use-case scope), then every limit set on its key, its user and its use
case. Requests per minute, tokens per minute and requests in flight are counted by the counters
(counters.py: in Redis when ADAPTIVE_REDIS_URL is set, else in this process). Spend against a daily or
monthly budget is read from the usage roll-ups, so every replica sees every replica's cost.

No database round trip per request: the limits table is small and read whole, at most once per
``usage_cache_seconds`` (at once after this process changes it), and the spend of a limited subject is read
at most that often too, with this process's own charges added meanwhile. A request without any limit on
its key, user or use case costs a dictionary look-up.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db import changes
from adaptive_engine.server.db.models import UsageLimit, UsageRollup
from adaptive_engine.server.domains.usage.counters import Counters, LocalCounters, RedisCounters, Slot
from adaptive_engine.server.errors import PermissionDenied, RateLimited, Unauthenticated
from adaptive_engine.server.singleflight import SingleFlight
from adaptive_engine.server.timestamps import as_utc, utcnow

SCOPES = ("API_KEY", "USER", "USE_CASE")
LIMIT_FIELDS = ("requests_per_minute", "tokens_per_minute", "max_concurrent", "budget_daily", "budget_monthly")


@dataclass(frozen=True)
class Limits:
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    max_concurrent: int | None = None
    budget_daily: float | None = None
    budget_monthly: float | None = None

    @staticmethod
    def of(row: Any) -> Limits:
        return Limits(**{name: getattr(row, name) for name in LIMIT_FIELDS})

    def slot(self, name: str) -> Slot | None:
        if not (self.requests_per_minute or self.tokens_per_minute or self.max_concurrent):
            return None
        return Slot(name, self.requests_per_minute or 0, self.tokens_per_minute or 0, self.max_concurrent or 0)


@dataclass
class Admission:
    """What a request took (in-flight slots to give back) and whom its tokens and cost are charged to."""

    slots: list[Slot] = field(default_factory=list)
    budgeted: list[tuple[str, uuid.UUID]] = field(default_factory=list)
    released: bool = False


def check_scope(principal: Principal, use_case_id: uuid.UUID, model_key: str) -> None:
    """The API key's own restrictions on the data plane (see ApiKey.expires_at and friends)."""
    # Checked at authentication too; here to the second, whatever the authentication cache holds.
    if principal.key_expires_at is not None and as_utc(principal.key_expires_at) <= utcnow():
        raise Unauthenticated("this API key has expired")
    if principal.allowed_models is not None and model_key not in principal.allowed_models:
        raise PermissionDenied(f"this API key may not use model '{model_key}'")
    if principal.allowed_use_cases is not None and use_case_id not in principal.allowed_use_cases:
        raise PermissionDenied("this API key may not use this use case")


def day_start(now: datetime) -> int:
    return int(now.replace(hour=0, minute=0, second=0, microsecond=0).timestamp())


def month_start(now: datetime) -> int:
    return int(now.replace(day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())


def month_end(now: datetime) -> int:
    month = now.month % 12 + 1
    year = now.year + (1 if month == 1 else 0)
    return int(now.replace(year=year, month=month, day=1, hour=0, minute=0, second=0, microsecond=0).timestamp())


SUBJECT_COLUMNS = {"API_KEY": UsageRollup.api_key_id, "USER": UsageRollup.user_id, "USE_CASE": UsageRollup.use_case_id}


async def spend(session: AsyncSession, scope: str, subject_id: uuid.UUID, since: int) -> float:
    """Dollars spent by a subject from ``since`` (a day's start) on, from the daily roll-ups."""
    query = select(func.coalesce(func.sum(UsageRollup.cost), 0.0)).where(
        UsageRollup.period == "DAY", UsageRollup.bucket >= since, SUBJECT_COLUMNS[scope] == subject_id
    )
    return float((await session.execute(query)).scalar_one())


class UsageLimiter:
    """The limits of the data plane (one of ``Platform.services``)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        ttl: float,
        redis_url: str | None = None,
        redis_prefix: str = "adaptive:",
    ) -> None:
        changes.install()
        self._sessionmaker = sessionmaker
        self.ttl = ttl
        self.counters: Counters = RedisCounters(redis_url, redis_prefix) if redis_url else LocalCounters()
        self.shared = redis_url is not None
        self._limits: dict[tuple[str, uuid.UUID], Limits] = {}
        self._limits_at = float("-inf")
        self._generation = -1
        # (scope, id) -> (read at, day start, month start, spent today, spent this month)
        self._spend: dict[tuple[str, uuid.UUID], list[float]] = {}
        self._flights = SingleFlight()

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        await self.counters.close()

    # ------------------------------------------------------------------ cached reads

    async def _table(self) -> dict[tuple[str, uuid.UUID], Limits]:
        generation = changes.generation((UsageLimit,))
        if generation == self._generation and time.monotonic() - self._limits_at <= self.ttl:
            return self._limits

        async def load() -> dict[tuple[str, uuid.UUID], Limits]:
            async with self._sessionmaker() as session:
                rows = (await session.execute(select(UsageLimit))).scalars().all()
            self._limits = {(row.scope, row.subject_id): Limits.of(row) for row in rows}
            self._limits_at, self._generation = time.monotonic(), generation
            return self._limits

        return await self._flights.run("limits", load)

    async def _spent(self, scope: str, subject_id: uuid.UUID, now: datetime) -> tuple[float, float]:
        day, month = day_start(now), month_start(now)
        entry = self._spend.get((scope, subject_id))
        if entry is not None and time.monotonic() - entry[0] <= self.ttl and entry[1] == day:
            return entry[3], entry[4]

        async def load() -> tuple[float, float]:
            async with self._sessionmaker() as session:
                today = await spend(session, scope, subject_id, day)
                this_month = await spend(session, scope, subject_id, month)
            self._spend[(scope, subject_id)] = [time.monotonic(), day, month, today, this_month]
            return today, this_month

        return await self._flights.run(("spend", scope, subject_id), load)

    # ------------------------------------------------------------------ the data plane

    def subjects(self, principal: Principal, use_case_id: uuid.UUID) -> list[tuple[str, uuid.UUID]]:
        out = [("USER", principal.user_id), ("USE_CASE", use_case_id)]
        if principal.api_key_id is not None:
            out.insert(0, ("API_KEY", principal.api_key_id))
        return out

    async def admit(self, principal: Principal, use_case_id: uuid.UUID, model_key: str) -> Admission:
        """Admit one request, or raise RateLimited naming the limit (nothing taken then)."""
        check_scope(principal, use_case_id, model_key)
        table = await self._table()
        admission = Admission()
        if not table:
            return admission
        now = utcnow()
        for scope, subject_id in self.subjects(principal, use_case_id):
            limits = table.get((scope, subject_id))
            if limits is None:
                continue
            name = f"{scope}:{subject_id}"
            if limits.budget_daily is not None or limits.budget_monthly is not None:
                admission.budgeted.append((scope, subject_id))
                today, this_month = await self._spent(scope, subject_id, now)
                if limits.budget_daily is not None and today >= limits.budget_daily:
                    raise _refused(scope, "budget_daily", limits.budget_daily, day_start(now) + 86400 - now.timestamp())
                if limits.budget_monthly is not None and this_month >= limits.budget_monthly:
                    raise _refused(scope, "budget_monthly", limits.budget_monthly, month_end(now) - now.timestamp())
            slot = limits.slot(name)
            if slot is not None:
                admission.slots.append(slot)
        if admission.slots:
            refusal = await self.counters.acquire(admission.slots)
            if refusal is not None:
                scope = refusal.slot.split(":", 1)[0]
                limits = next(
                    table[(s, i)] for s, i in self.subjects(principal, use_case_id) if f"{s}:{i}" == refusal.slot
                )
                raise _refused(scope, refusal.limit, getattr(limits, refusal.limit), refusal.retry_after)
        return admission

    async def release(self, admission: Admission | None) -> None:
        if admission is None or admission.released:
            return
        admission.released = True
        if any(slot.max_concurrent for slot in admission.slots):
            await self.counters.release(admission.slots)

    async def charge(self, admission: Admission | None, tokens: int, cost: float | None) -> None:
        """Count a served request's tokens and cost against its limits."""
        if admission is None:
            return
        if tokens and any(slot.tokens_per_minute for slot in admission.slots):
            await self.counters.add_tokens(admission.slots, tokens)
        if cost:
            # Seen at once by this process; by the others when they next read the roll-ups.
            for subject in admission.budgeted:
                entry = self._spend.get(subject)
                if entry is not None:
                    entry[3] += cost
                    entry[4] += cost


def _refused(scope: str, limit: str, value: Any, retry_after: float) -> RateLimited:
    seconds = max(1, int(retry_after + 0.999))
    what = {"API_KEY": "API key", "USER": "user", "USE_CASE": "use case"}[scope]
    error = RateLimited(
        f"rate limit reached: the {what}'s {limit} limit ({value:g}) is exhausted; retry after {seconds} s",
        details={"limit": limit, "scope": scope, "value": value, "retry_after": seconds},
    )
    error.retry_after = seconds
    return error
