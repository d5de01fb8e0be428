"""The counters behind rate limits: requests in the last minute (a sliding log), tokens in the current minute
(a fixed window) and requests in flight, per limited subject.

Two stores with one interface. :class:`LocalCounters` keeps them in this process (each replica counts
alone). :class:`RedisCounters` keeps them in Redis, shared by the replicas: far from a limit a replica admits
on its own within its share and writes its counts in batches; near one it asks Redis, whose Lua script checks
and takes every subject's slot at once (two replicas can never both take the last slot).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("adaptive_engine.usage")

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


# Redis: one script both writes what this replica counted on its own since its last exchange and, when asked,
# checks and takes every slot of a request; it answers each slot's counts as they now are.
# KEYS: per slot, its request log (sorted set), token counter of this minute, in-flight counter.
# ARGV: now, seconds to the next minute, 1 to acquire (0: write and read only), the new request's member, then per
# slot: its three limits (0: none), tokens to add, in-flight change, n, then n (score, member) pairs to add to
# its log. Answers {0 or the refusing slot's index, limit name, retry-after, then per slot its three counts}.
SYNC = """
local now = tonumber(ARGV[1])
local n = #KEYS / 3
local limits = {}
local at = 5
for i = 1, n do
  local log, tokens, flight = KEYS[(i - 1) * 3 + 1], KEYS[(i - 1) * 3 + 2], KEYS[(i - 1) * 3 + 3]
  limits[i] = {tonumber(ARGV[at]), tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])}
  local add, delta, members = tonumber(ARGV[at + 3]), tonumber(ARGV[at + 4]), tonumber(ARGV[at + 5])
  at = at + 6
  for j = 1, members do
    redis.call('ZADD', log, ARGV[at], ARGV[at + 1])
    at = at + 2
  end
  if members > 0 then redis.call('EXPIRE', log, 61) end
  redis.call('ZREMRANGEBYSCORE', log, '-inf', now - 60)
  if add > 0 then
    redis.call('INCRBY', tokens, add)
    redis.call('EXPIRE', tokens, 120)
  end
  if delta ~= 0 then
    local value = math.max(0, tonumber(redis.call('GET', flight) or '0') + delta)
    redis.call('SET', flight, value, 'EX', IN_FLIGHT_TTL_S)
  end
end
local refusal = {0, '', ''}
if ARGV[3] == '1' then
  for i = 1, n do
    local rpm, tpm, conc = limits[i][1], limits[i][2], limits[i][3]
    local log = KEYS[(i - 1) * 3 + 1]
    if rpm > 0 and redis.call('ZCARD', log) >= rpm then
      local oldest = redis.call('ZRANGE', log, -rpm, -rpm, 'WITHSCORES')
      refusal = {i, 'requests_per_minute', tostring(tonumber(oldest[2]) + 60 - now)}
      break
    end
    if tpm > 0 and tonumber(redis.call('GET', KEYS[(i - 1) * 3 + 2]) or '0') >= tpm then
      refusal = {i, 'tokens_per_minute', ARGV[2]}
      break
    end
    if conc > 0 and tonumber(redis.call('GET', KEYS[(i - 1) * 3 + 3]) or '0') >= conc then
      refusal = {i, 'max_concurrent', '1'}
      break
    end
  end
  if refusal[1] == 0 then
    for i = 1, n do
      if limits[i][1] > 0 then
        redis.call('ZADD', KEYS[(i - 1) * 3 + 1], now, ARGV[4])
        redis.call('EXPIRE', KEYS[(i - 1) * 3 + 1], 61)
      end
      if limits[i][3] > 0 then
        redis.call('INCR', KEYS[(i - 1) * 3 + 3])
        redis.call('EXPIRE', KEYS[(i - 1) * 3 + 3], IN_FLIGHT_TTL_S)
      end
    end
  end
end
for i = 1, n do
  refusal[#refusal + 1] = redis.call('ZCARD', KEYS[(i - 1) * 3 + 1])
  refusal[#refusal + 1] = tonumber(redis.call('GET', KEYS[(i - 1) * 3 + 2]) or '0')
  refusal[#refusal + 1] = tonumber(redis.call('GET', KEYS[(i - 1) * 3 + 3]) or '0')
end
return refusal
""".replace("IN_FLIGHT_TTL_S", str(IN_FLIGHT_TTL_S))

# A replica admits on its own, without asking Redis, at most this share of what a limit has left (as it last
# read it) between two exchanges: with N replicas a limit L can be passed by N * L / SHARE at most, and not at
# all while L < SHARE (every request then asks Redis).
SHARE = 16
# How often the counts a replica took on its own go to Redis (and fresh counts come back).
SYNC_INTERVAL_S = 0.1
# A view older than this is not trusted: the next request asks Redis.
VIEW_MAX_AGE_S = 1.0


@dataclass
class _View:
    """One slot's counts as Redis last answered them, and what this replica counted since (not yet written)."""

    requests: int = 0
    tokens: int = 0
    minute: int = 0  # the minute ``tokens`` is of
    in_flight: int = 0
    read_at: float = float("-inf")  # monotonic
    new_requests: list[tuple[float, str]] = field(default_factory=list)  # (time, member)
    new_tokens: int = 0
    new_tokens_minute: int = 0
    in_flight_change: int = 0
    used_at: float = field(default_factory=time.monotonic)  # the last request that used the slot
    # What the exchange now in flight took out of new_* (counted in Redis once it answers, so counted
    # meanwhile here: a request admitted during the round trip sees them).
    sending_requests: int = 0
    sending_tokens: int = 0
    sending_tokens_minute: int = 0
    sending_in_flight: int = 0

    def admits(self, slot: Slot, minute: int, now: float) -> bool:
        """Whether this replica may admit a request on its own: the view is fresh and every limit keeps
        more than this replica took of it alone."""
        if now - self.read_at > VIEW_MAX_AGE_S:
            return False
        requests = self.requests + self.sending_requests
        if slot.requests_per_minute and (len(self.new_requests) + 1) * SHARE > slot.requests_per_minute - requests:
            return False
        if slot.tokens_per_minute:
            used = self.tokens if self.minute == minute else 0
            used += self.sending_tokens if self.sending_tokens_minute == minute else 0
            mine = self.new_tokens if self.new_tokens_minute == minute else 0
            if mine * SHARE >= slot.tokens_per_minute - used or used + mine >= slot.tokens_per_minute:
                return False
        in_flight = self.in_flight + self.sending_in_flight
        return not (slot.max_concurrent and (self.in_flight_change + 1) * SHARE > slot.max_concurrent - in_flight)

    def pending(self) -> bool:
        return bool(self.new_requests or self.new_tokens or self.in_flight_change)


@dataclass
class _Writes:
    """What one exchange writes for a slot (taken out of its view; put back if the exchange fails)."""

    requests: list[tuple[float, str]]
    tokens: int
    tokens_minute: int
    in_flight_change: int


class RedisCounters:
    """Counters shared by every replica using the same Redis and prefix.

    Far from its limits a request costs no round trip: the replica admits it against its view of the shared
    counts (Redis's last answer plus what it took since), within its share of what is left (SHARE), and
    writes what it counted in batches in the background (every SYNC_INTERVAL_S). Close to a limit, or with a
    view older than VIEW_MAX_AGE_S, the request asks Redis: one script writes the replica's pending counts,
    then checks and takes every slot atomically, so two replicas never both take a last slot they both saw.
    """

    def __init__(self, url: str, prefix: str) -> None:
        from redis.asyncio import Redis

        self.prefix = prefix
        self.redis: Any = Redis.from_url(url)
        self._sync = self.redis.register_script(SYNC)
        self._views: dict[str, _View] = {}
        self._slots: dict[str, Slot] = {}  # the latest limits each slot was used with
        # This replica's exchanges run one at a time: each answer is newer than the one before.
        self._lock = asyncio.Lock()
        self._member_prefix = os.urandom(6).hex()
        self._members = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.exchanges = 0  # round trips to Redis (read by the tests and the bench)

    def _keys(self, slot: Slot, minute: int) -> list[str]:
        base = f"{self.prefix}limits:{slot.name}"
        return [f"{base}:requests", f"{base}:tokens:{minute}", f"{base}:in_flight"]

    def _view(self, slot: Slot) -> _View:
        view = self._views.get(slot.name)
        if view is None:
            view = self._views[slot.name] = _View()
        self._slots[slot.name] = slot
        return view

    async def acquire(self, slots: list[Slot]) -> Refusal | None:
        self._start()
        now, clock = time.time(), time.monotonic()
        minute = _minute(now)
        views = [self._view(slot) for slot in slots]
        for view in views:  # in use: not forgotten by the background writer while this request asks Redis
            view.used_at = clock
        member = f"{self._member_prefix}{next(self._members):x}"
        if all(view.admits(slot, minute, clock) for slot, view in zip(slots, views, strict=True)):
            for slot, view in zip(slots, views, strict=True):
                if slot.requests_per_minute:
                    view.new_requests.append((now, member))
                if slot.max_concurrent:
                    view.in_flight_change += 1
            return None
        answer = await self._exchange(slots, acquire=member)
        if int(answer[0]) == 0:
            return None
        limit = answer[1].decode() if isinstance(answer[1], bytes) else answer[1]
        return Refusal(slots[int(answer[0]) - 1].name, limit, float(answer[2]))

    async def release(self, slots: list[Slot]) -> None:
        for slot in slots:
            if slot.max_concurrent:
                view = self._view(slot)
                view.in_flight_change -= 1
                if view.in_flight + view.in_flight_change + 1 >= slot.max_concurrent:
                    self._wake.set()  # a slot others may be waiting for: tell Redis now, not at the next tick

    async def add_tokens(self, slots: list[Slot], tokens: int) -> None:
        if tokens <= 0:
            return
        minute = _minute(time.time())
        for slot in slots:
            if slot.tokens_per_minute:
                view = self._view(slot)
                if view.new_tokens_minute != minute:  # a past minute's tokens no longer count
                    view.new_tokens, view.new_tokens_minute = 0, minute
                view.new_tokens += tokens

    async def _exchange(self, slots: list[Slot], acquire: str | None = None) -> list[Any]:
        """One round trip: write the slots' pending counts, take a request's slots if ``acquire`` (its log
        member), and read the counts back into the views."""
        async with self._lock:
            now, clock = time.time(), time.monotonic()
            minute = _minute(now)
            keys: list[str] = []
            args: list[Any] = [repr(now), repr(_to_next_minute(now)), "1" if acquire else "0", acquire or ""]
            taken: list[_Writes] = []
            for slot in slots:
                view = self._view(slot)
                writes = _Writes(view.new_requests, view.new_tokens, view.new_tokens_minute, view.in_flight_change)
                view.new_requests, view.new_tokens, view.in_flight_change = [], 0, 0
                view.sending_requests, view.sending_in_flight = len(writes.requests), writes.in_flight_change
                view.sending_tokens, view.sending_tokens_minute = writes.tokens, writes.tokens_minute
                taken.append(writes)
                keys += self._keys(slot, minute)
                add = writes.tokens if writes.tokens_minute == minute else 0
                args += [slot.requests_per_minute, slot.tokens_per_minute, slot.max_concurrent, add]
                args += [writes.in_flight_change, len(writes.requests)]
                for at, member in writes.requests:
                    args += [repr(at), member]
            try:
                answer = await self._sync(keys=keys, args=args)
            except BaseException:
                for slot, writes in zip(slots, taken, strict=True):  # written next time
                    view = self._view(slot)
                    view.sending_requests = view.sending_tokens = view.sending_in_flight = 0
                    view.new_requests[:0] = writes.requests
                    if writes.tokens_minute == view.new_tokens_minute or not view.new_tokens:
                        view.new_tokens += writes.tokens
                        view.new_tokens_minute = writes.tokens_minute
                    view.in_flight_change += writes.in_flight_change
                raise
            self.exchanges += 1
            for i, slot in enumerate(slots):
                view = self._view(slot)
                view.requests, view.tokens, view.in_flight = (int(x) for x in answer[3 + i * 3 : 6 + i * 3])
                view.sending_requests = view.sending_tokens = view.sending_in_flight = 0
                view.minute, view.read_at = minute, clock
                if acquire:
                    view.used_at = clock
            return answer

    # ------------------------------------------------------------------ the background writer

    def _start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="limit-counters-sync")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), SYNC_INTERVAL_S)
            self._wake.clear()
            try:
                await self.flush()
            except asyncio.CancelledError:
                raise
            except Exception:  # Redis away: the counts stay pending, and requests ask Redis (and fail) meanwhile
                log.warning("could not write the limit counters to Redis", exc_info=True)
                await asyncio.sleep(1.0)

    async def flush(self) -> None:
        """Write every pending count, and refresh the views of the slots used lately."""
        clock = time.monotonic()
        names = [name for name, view in self._views.items() if view.pending() or clock - view.used_at <= VIEW_MAX_AGE_S]
        for name in [n for n, v in self._views.items() if n not in names and clock - v.used_at > WINDOW_S]:
            del self._views[name], self._slots[name]  # idle for a minute: forgotten
        if names:
            await self._exchange([self._slots[name] for name in names])

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            with contextlib.suppress(Exception):
                await self.flush()  # what this replica counted last
        await self.redis.aclose()
