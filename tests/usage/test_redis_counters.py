"""The Redis counters of two replicas (two RedisCounters on one Redis and prefix, as two server processes have):
far from a limit requests are admitted without a round trip and counted in batches; a small limit is exact;
a large one is passed by at most each replica's share (docs/usage-and-limits.md, "Across replicas")."""

from __future__ import annotations

import asyncio
import time
import uuid

import redis

from adaptive_engine.server.domains.usage.counters import SHARE, RedisCounters, Slot
from tests.usage.test_limits import REDIS_URL, early_in_a_minute, forget


async def _replicas(prefix: str) -> tuple[RedisCounters, RedisCounters]:
    return RedisCounters(REDIS_URL, prefix), RedisCounters(REDIS_URL, prefix)


async def _until(condition, what: str, within: float = 30.0) -> None:  # noqa: ANN001
    """Let the other tasks run until ``condition()`` holds (a state, bounded): one loop turn at a time, so a
    state that lasts only while a reply is awaited is seen."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"never: {what}"
        await asyncio.sleep(0)


def run(test) -> None:  # noqa: ANN001
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    try:
        asyncio.run(test(prefix))
    finally:
        forget(prefix)


def test_a_small_limit_is_exact_across_replicas() -> None:
    async def test(prefix: str) -> None:
        a, b = await _replicas(prefix)
        slot = Slot(f"API_KEY:{uuid.uuid4()}", requests_per_minute=5, tokens_per_minute=0, max_concurrent=0)
        answers = [await (a, b)[i % 2].acquire([slot]) for i in range(7)]
        assert [answer is None for answer in answers] == [True] * 5 + [False] * 2
        assert answers[5] is not None and answers[5].limit == "requests_per_minute"
        assert 0 < answers[5].retry_after <= 60
        assert a.exchanges + b.exchanges == 7  # every request asked Redis
        await a.close()
        await b.close()

    run(test)


def test_far_from_a_limit_requests_cost_no_round_trip_and_the_overshoot_is_bounded() -> None:
    async def test(prefix: str) -> None:
        a, b = await _replicas(prefix)
        limit = 1600
        slot = Slot(f"USE_CASE:{uuid.uuid4()}", requests_per_minute=limit, tokens_per_minute=0, max_concurrent=0)
        admitted, before_first_refusal = 0, None
        for i in range(2 * limit):
            if await (a, b)[i % 2].acquire([slot]) is None:
                admitted += 1
            elif before_first_refusal is None:
                before_first_refusal = a.exchanges + b.exchanges
            if i % 50 == 0:
                await asyncio.sleep(0)  # the background writers get a turn now and then
        # Never fewer than the limit; more by each replica's unwritten share at most.
        assert limit <= admitted <= limit + 2 * limit // SHARE, admitted
        # Round trips until the limit was reached: a few per replica for each 1/16 of what was left.
        assert before_first_refusal is not None and before_first_refusal < admitted / 4, before_first_refusal
        await a.close()
        await b.close()  # writes what it counted last
        stored = redis.Redis.from_url(REDIS_URL)
        assert stored.zcard(f"{prefix}limits:{slot.name}:requests") == admitted  # every admission is in Redis
        stored.close()

    run(test)


def test_in_flight_slots_and_tokens_are_written_in_batches() -> None:
    async def test(prefix: str) -> None:
        a, b = await _replicas(prefix)
        slot = Slot(f"USER:{uuid.uuid4()}", requests_per_minute=0, tokens_per_minute=10**6, max_concurrent=1000)
        for _ in range(40):
            assert await a.acquire([slot]) is None
        before = a.exchanges
        await a.add_tokens([slot], 300)
        for _ in range(40):
            await a.release([slot])
        assert a.exchanges == before  # nothing asked Redis
        # Two of the background writer's exchanges done: the second began after these counts were taken.
        await _until(lambda: a.exchanges >= before + 2, "the background writer wrote twice")
        stored = redis.Redis.from_url(REDIS_URL)
        keys = [k.decode() for k in stored.scan_iter(f"{prefix}limits:{slot.name}:*")]
        tokens = next(k for k in keys if ":tokens:" in k)
        assert int(stored.get(tokens)) == 300
        assert int(stored.get(f"{prefix}limits:{slot.name}:in_flight") or 0) == 0
        stored.close()
        # The other replica reads the written counts when it asks Redis.
        small = Slot(slot.name, requests_per_minute=0, tokens_per_minute=301, max_concurrent=0)
        assert await b.acquire([small]) is None
        await b.add_tokens([small], 1)
        refused = await b.acquire([small])
        assert refused is not None and refused.limit == "tokens_per_minute"
        await a.close()
        await b.close()

    run(test)


def test_a_slot_asking_redis_is_not_forgotten_by_the_writer_meanwhile() -> None:
    """The writer forgets slots idle for a minute: never one whose request is waiting for Redis's answer (it
    was forgotten, and the answer then failed the request with a KeyError: a 500)."""

    async def test(prefix: str) -> None:
        a = RedisCounters(REDIS_URL, prefix)
        slot = Slot(f"API_KEY:{uuid.uuid4()}", requests_per_minute=0, tokens_per_minute=0, max_concurrent=1)
        asking = asyncio.create_task(a.acquire([slot]))  # a new slot: it asks Redis
        await _until(a._lock.locked, "the request asks Redis")
        await a.flush()
        assert await asking is None
        refused = await a.acquire([slot])
        assert refused is not None and refused.limit == "max_concurrent"
        await a.close()

    run(test)


def test_counts_on_their_way_to_redis_count_for_a_request_admitted_meanwhile() -> None:
    """While the writer's round trip is in flight, the counts it carries are in neither the replica's pending
    counts nor Redis's last answer: a request admitted then still sees them."""

    async def test(prefix: str) -> None:
        early_in_a_minute(ahead=5.0)  # the tokens of one fixed minute
        a = RedisCounters(REDIS_URL, prefix)
        slot = Slot(f"API_KEY:{uuid.uuid4()}", requests_per_minute=0, tokens_per_minute=10, max_concurrent=0)
        await a.add_tokens([slot], 8)  # a first call's tokens, written: 2 of 10 left
        await a.flush()
        await a.add_tokens([slot], 8)  # a second call's: 6 over
        admin = redis.Redis.from_url(REDIS_URL)
        # Redis holds the writer's answer (writes only, for at most 10 s) until the request below is decided.
        admin.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")
        try:
            writing = asyncio.create_task(a.flush())
            await _until(a._lock.locked, "the writer waits for Redis")
            asking = asyncio.create_task(a.acquire([slot]))
            await asyncio.sleep(0)
        finally:
            admin.execute_command("CLIENT", "UNPAUSE")
            admin.close()
        await writing
        refused = await asking
        assert refused is not None and refused.limit == "tokens_per_minute"
        await a.close()

    run(test)
