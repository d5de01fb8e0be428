"""The counters behind rate limits: requests in the last minute (a sliding log), tokens in the current minute
(a fixed window) and requests in flight, per limited subject.

Two stores with one interface. :class:`LocalCounters` keeps them in this process (each replica counts
alone). :class:`RedisCounters` keeps them in Redis, and checks and takes every subject's slot in one Lua
script (atomic: two replicas can never both take the last slot).
"""

from __future__ import annotations

import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any, Protocol

WINDOW_S = 60.0
# A replica that dies with requests in flight leaves its slots taken in Redis: they expire after this.
IN_FLIGHT_TTL_S = 3600


@dataclass(frozen=True)
class Slot:
    """One subject's counters and limits (0: none) for a request."""

    name: str  # "API_KEY:<id>", "USER:<id>", "USE_CASE:<id>"
    requests_per_minute: int
    tokens_per_minute: int
    max_concurrent: int


@dataclass(frozen=True)
class Refusal:
    slot: str
    limit: str  # requests_per_minute, tokens_per_minute, max_concurrent
    retry_after: float


def _minute(now: float) -> int:
    return int(now // WINDOW_S)


def _to_next_minute(now: float) -> float:
    return (_minute(now) + 1) * WINDOW_S - now


class Counters(Protocol):
    async def acquire(self, slots: list[Slot]) -> Refusal | None: ...

    async def release(self, slots: list[Slot]) -> None: ...

    async def add_tokens(self, slots: list[Slot], tokens: int) -> None: ...

    async def close(self) -> None: ...


class LocalCounters:
    """Per-process counters (documented as per-replica limits)."""

    def __init__(self) -> None:
        self._requests: dict[str, deque[float]] = {}
        self._tokens: dict[str, tuple[int, int]] = {}  # name -> (minute, tokens)
        self._in_flight: dict[str, int] = {}

    def _recent(self, name: str, now: float) -> deque[float]:
        log = self._requests.setdefault(name, deque())
        while log and log[0] <= now - WINDOW_S:
            log.popleft()
        return log

    async def acquire(self, slots: list[Slot]) -> Refusal | None:
        now = time.time()
        for slot in slots:
            if slot.requests_per_minute:
                log = self._recent(slot.name, now)
                if len(log) >= slot.requests_per_minute:
                    # Free again when the oldest request that counts leaves the window.
                    oldest = log[len(log) - slot.requests_per_minute]
                    return Refusal(slot.name, "requests_per_minute", oldest + WINDOW_S - now)
            if slot.tokens_per_minute:
                minute, used = self._tokens.get(slot.name, (0, 0))
                if minute == _minute(now) and used >= slot.tokens_per_minute:
                    return Refusal(slot.name, "tokens_per_minute", _to_next_minute(now))
            if slot.max_concurrent and self._in_flight.get(slot.name, 0) >= slot.max_concurrent:
                return Refusal(slot.name, "max_concurrent", 1.0)
        for slot in slots:
            if slot.requests_per_minute:
                self._recent(slot.name, now).append(now)
            if slot.max_concurrent:
                self._in_flight[slot.name] = self._in_flight.get(slot.name, 0) + 1
        return None

    async def release(self, slots: list[Slot]) -> None:
        for slot in slots:
            if slot.max_concurrent and self._in_flight.get(slot.name, 0) > 0:
                self._in_flight[slot.name] -= 1

    async def add_tokens(self, slots: list[Slot], tokens: int) -> None:
        minute = _minute(time.time())
        for slot in slots:
            if slot.tokens_per_minute:
                at, used = self._tokens.get(slot.name, (minute, 0))
                self._tokens[slot.name] = (minute, (used if at == minute else 0) + tokens)

    async def close(self) -> None:
        return None


# KEYS: per slot, its request log (sorted set), token counter of this minute, in-flight counter.
# ARGV: now (seconds, float), a unique member id, then per slot its three limits (0: none).
# Answers {0} when every slot was taken, else {slot index, limit name, retry-after seconds as a string}.
ACQUIRE = (
    """
local now = tonumber(ARGV[1])
local n = #KEYS / 3
for i = 1, n do
  local rpm = tonumber(ARGV[3 + (i - 1) * 3 + 1])
  local tpm = tonumber(ARGV[3 + (i - 1) * 3 + 2])
  local conc = tonumber(ARGV[3 + (i - 1) * 3 + 3])
  local log = KEYS[(i - 1) * 3 + 1]
  if rpm > 0 then
    redis.call('ZREMRANGEBYSCORE', log, '-inf', now - 60)
    if redis.call('ZCARD', log) >= rpm then
      local oldest = redis.call('ZRANGE', log, -rpm, -rpm, 'WITHSCORES')
      return {i, 'requests_per_minute', tostring(tonumber(oldest[2]) + 60 - now)}
    end
  end
  if tpm > 0 and tonumber(redis.call('GET', KEYS[(i - 1) * 3 + 2]) or '0') >= tpm then
    return {i, 'tokens_per_minute', ARGV[3]}
  end
  if conc > 0 and tonumber(redis.call('GET', KEYS[(i - 1) * 3 + 3]) or '0') >= conc then
    return {i, 'max_concurrent', '1'}
  end
end
for i = 1, n do
  if tonumber(ARGV[3 + (i - 1) * 3 + 1]) > 0 then
    local log = KEYS[(i - 1) * 3 + 1]
    redis.call('ZADD', log, now, ARGV[2])
    redis.call('EXPIRE', log, 61)
  end
  if tonumber(ARGV[3 + (i - 1) * 3 + 3]) > 0 then
    local flight = KEYS[(i - 1) * 3 + 3]
    redis.call('INCR', flight)
    redis.call('EXPIRE', flight, IN_FLIGHT_TTL_S)
  end
end
return {0}
"""
    # Replaced rather than %-formatted: the Lua has braces and percent signs of its own.
).replace("IN_FLIGHT_TTL_S", str(IN_FLIGHT_TTL_S))

RELEASE = """
for i = 1, #KEYS do
  if tonumber(redis.call('GET', KEYS[i]) or '0') > 0 then redis.call('DECR', KEYS[i]) end
end
return 0
"""

ADD_TOKENS = """
for i = 1, #KEYS do
  redis.call('INCRBY', KEYS[i], ARGV[1])
  redis.call('EXPIRE', KEYS[i], 120)
end
return 0
"""


class RedisCounters:
    """Counters shared by every replica using the same Redis and prefix."""

    def __init__(self, url: str, prefix: str) -> None:
        from redis.asyncio import Redis

        self.prefix = prefix
        self.redis: Any = Redis.from_url(url)
        self._acquire = self.redis.register_script(ACQUIRE)
        self._release = self.redis.register_script(RELEASE)
        self._add_tokens = self.redis.register_script(ADD_TOKENS)

    def _keys(self, slot: Slot, minute: int) -> list[str]:
        base = f"{self.prefix}limits:{slot.name}"
        return [f"{base}:requests", f"{base}:tokens:{minute}", f"{base}:in_flight"]

    async def acquire(self, slots: list[Slot]) -> Refusal | None:
        now = time.time()
        keys: list[str] = []
        args: list[Any] = [repr(now), uuid.uuid4().hex, repr(_to_next_minute(now))]
        for slot in slots:
            keys += self._keys(slot, _minute(now))
            args += [slot.requests_per_minute, slot.tokens_per_minute, slot.max_concurrent]
        answer = await self._acquire(keys=keys, args=args)
        if int(answer[0]) == 0:
            return None
        limit = answer[1].decode() if isinstance(answer[1], bytes) else answer[1]
        return Refusal(slots[int(answer[0]) - 1].name, limit, float(answer[2]))

    async def release(self, slots: list[Slot]) -> None:
        keys = [self._keys(slot, 0)[2] for slot in slots if slot.max_concurrent]
        if keys:
            await self._release(keys=keys)

    async def add_tokens(self, slots: list[Slot], tokens: int) -> None:
        minute = _minute(time.time())
        keys = [self._keys(slot, minute)[1] for slot in slots if slot.tokens_per_minute]
        if keys and tokens > 0:
            await self._add_tokens(keys=keys, args=[tokens])

    async def close(self) -> None:
        await self.redis.aclose()
