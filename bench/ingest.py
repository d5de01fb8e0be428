"""Ingest throughput: acknowledged interaction + feedback events per second through REST, beside the
raw ceiling of the same database (batched inserts of the same rows through the writer's own write path, no
HTTP), measured in the same run.

    PYTHONPATH=src python bench/ingest.py [--seconds 10] [--rounds 3] [--databases sqlite,postgresql] [--clients 1,64]
        [--limits]

One server process (`python -m adaptive_engine.cli serve`) per database. Each client loops: POST
/api/v1/interactions with one inline feedback (2 events), then POST /api/v1/feedback on that completion
(1 event). An event counts once its 2xx arrived, i.e. once it is committed (group commit). A last row
(--batch N) has the clients post arrays of N interactions instead, as an SDK or a log shipper that
buffers would. ``server CPU``: the server process's CPU time (all threads) per acknowledged event, a cost that
the load generator and other work on the machine barely move, unlike events/s on two shared cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from server_process import ServerProcess  # noqa: E402

from adaptive_engine.server.db import direct  # noqa: E402
from adaptive_engine.server.db.engine import create_engine, create_sessionmaker  # noqa: E402
from adaptive_engine.server.db.models import Completion, Feedback, Metric, UseCase  # noqa: E402
from adaptive_engine.server.domains.interactions.ingest import (  # noqa: E402
    Rows,
    completion_row,
    planned_writes,
)
from adaptive_engine.server.domains.interactions.service import prompt_hash  # noqa: E402
from adaptive_engine.server.timestamps import utcnow  # noqa: E402

KEY = "bench-admin-key"
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"
RAW_BATCH = 200  # interactions per transaction in the raw ceiling (each with 2 feedbacks: 3 events)


def gql(url: str, query: str, variables: dict) -> None:
    body = httpx.post(
        f"{url}/api/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=60,
    ).json()
    if body.get("errors"):
        raise RuntimeError(body["errors"])


async def rest_load(
    url: str, use_case: str, metric: str, clients: int, seconds: float, batch: int = 1
) -> tuple[int, int, float]:
    """(acknowledged events, errors, elapsed seconds). With ``batch`` > 1 each client instead posts arrays of
    ``batch`` interactions, each with one inline feedback (2 events per interaction, one commit per array)."""
    events = 0
    errors = 0
    stop_at = time.monotonic() + seconds
    headers = {"Authorization": f"Bearer {KEY}"}

    async def client(session: aiohttp.ClientSession, n: int) -> None:
        nonlocal events, errors
        i = 0
        while batch > 1 and time.monotonic() < stop_at:
            i += 1
            items = [
                {
                    "use_case": use_case,
                    "completion": f"answer {n}-{i}-{j}",
                    "messages": [{"role": "user", "content": f"question {n}-{i}-{j}"}],
                    "feedbacks": [{"metric": metric, "value": j % 2}],
                }
                for j in range(batch)
            ]
            async with session.post(f"{url}/api/v1/interactions", json=items, headers=headers) as r:
                await r.read()
                if r.status != 201:
                    errors += 1
                    continue
            events += 2 * batch
        while batch == 1 and time.monotonic() < stop_at:
            i += 1
            body = {
                "use_case": use_case,
                "completion": f"answer {n}-{i}",
                "messages": [{"role": "user", "content": f"question {n}-{i}"}],
                "feedbacks": [{"metric": metric, "value": i % 2}],
            }
            async with session.post(f"{url}/api/v1/interactions", json=body, headers=headers) as r:
                if r.status != 201:
                    errors += 1
                    continue
                created = await r.json()
            events += 2
            async with session.post(
                f"{url}/api/v1/feedback",
                headers=headers,
                json={"completion_id": created["completion_id"], "metric": metric, "value": 1},
            ) as r:
                if r.status != 201:
                    errors += 1
                    continue
                await r.read()
            events += 1

    start = time.monotonic()
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        await asyncio.gather(*[client(session, n) for n in range(clients)])
    return events, errors, time.monotonic() - start


async def raw_ceiling(database_url: str, use_case: str, metric: str, seconds: float) -> float:
    """Events/s of batched inserts of the same rows straight into the database, through the ingest writer's
    own write path (db/direct.py), with no HTTP, no validation and no queue."""
    from sqlalchemy import select

    engine = create_engine(database_url)
    maker = create_sessionmaker(engine)
    try:
        async with maker() as session:
            use_case_id = (await session.execute(select(UseCase.id).where(UseCase.key == use_case))).scalar_one()
            metric_id = (await session.execute(select(Metric.id).where(Metric.key == metric))).scalar_one()
        events = 0
        stop_at = time.monotonic() + seconds
        start = time.monotonic()
        while time.monotonic() < stop_at:
            rows = Rows()
            for i in range(RAW_BATCH):
                messages = [{"role": "user", "content": f"raw question {i}"}]
                completion = rows.add(
                    Completion,
                    completion_row(
                        use_case_id=use_case_id,
                        messages=messages,
                        completion=f"raw {i}",
                        prompt_hash=prompt_hash(messages),
                        source="OFFLINE",
                        session_id=uuid.uuid4(),
                        labels={},
                    ),
                )
                for value in (i % 2, 1):
                    rows.add(
                        Feedback,
                        {
                            "id": uuid.uuid4(),
                            "created_at": utcnow(),
                            "completion_id": completion["id"],
                            "metric_id": metric_id,
                            "use_case_id": use_case_id,
                            "value": float(value),
                            "reason": None,
                            "details": None,
                            "user_ref": None,
                        },
                    )
            async with engine.connect() as connection:
                await direct.run(connection, await planned_writes(connection, rows.tables, None))
            events += rows.count()
        return events / (time.monotonic() - start)
    finally:
        await engine.dispose()


def fresh_postgres() -> tuple[str, str]:
    import asyncpg

    name = f"ae_bench_{uuid.uuid4().hex[:10]}"

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(run())
    return name, f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"


def drop_postgres(name: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(run())


async def health_load(url: str, clients: int, seconds: float) -> float:
    """Requests/s of GET /health (no auth, no database): the HTTP stack's own ceiling on this machine now."""
    done = 0
    stop_at = time.monotonic() + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        nonlocal done
        while time.monotonic() < stop_at:
            async with session.get(f"{url}/health") as r:
                await r.read()
                done += 1

    start = time.monotonic()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        await asyncio.gather(*[client(session) for _ in range(clients)])
    return done / (time.monotonic() - start)


def bench_database(
    kind: str,
    seconds: float,
    client_counts: list[int],
    extra_path: str | None = None,
    batch: int = 1,
    rounds: int = 3,
    limits: bool = False,
) -> list[tuple[str, str, list[float], list[float], list[float], int]]:
    """Rows of (database, load, events/s per round, ratio to that round's raw ceiling per round, the server's CPU
    microseconds per event per round, errors).
    Each round measures every load and then the raw ceiling (the server idle), so each ratio compares
    figures taken a few seconds apart on a machine whose speed drifts."""
    data_dir = Path(tempfile.mkdtemp(prefix="ae-bench-"))
    pg_name = None
    database_url = None
    if kind == "postgresql":
        pg_name, database_url = fresh_postgres()
    resolved = database_url or f"sqlite+aiosqlite:///{(data_dir / 'engine.db').resolve()}"
    server = ServerProcess(
        data_dir,
        KEY,
        env={"ADAPTIVE_BUNDLED_MODELS": "false"},
        database_url=database_url,
        extra_path=extra_path,
        timeout_s=120,
    )
    url = server.url
    loads: list[tuple[str, int, int]] = [(f"REST, {c} client{'s' if c > 1 else ''}", c, 1) for c in client_counts]
    if batch > 1:
        loads.append((f"REST, {max(client_counts)} clients, arrays of {batch} interactions", max(client_counts), batch))
    rates: dict[str, list[float]] = {label: [] for label, _, _ in loads}
    errors: dict[str, int] = {label: 0 for label, _, _ in loads}
    costs: dict[str, list[float]] = {label: [] for label, _, _ in loads}
    raws: list[float] = []
    try:
        use_case, metric = "bench", "bench-ok"
        gql(
            url,
            "mutation($i: UseCaseCreate!) { createUseCase(input: $i) { id } }",
            {"i": {"key": use_case, "name": use_case}},
        )
        gql(
            url,
            "mutation($i: MetricCreate!) { createMetric(input: $i) { id } }",
            {"i": {"key": metric, "name": metric, "kind": "BOOL"}},
        )
        if limits:  # generous limits (never reached) on the caller's user and the use case
            for scope, subject in (("USER", "admin@localhost"), ("USE_CASE", use_case)):
                gql(
                    url,
                    "mutation($i: UsageLimitInput!) { setUsageLimits(input: $i) { scope } }",
                    {
                        "i": {
                            "scope": scope,
                            "subject": subject,
                            "requestsPerMinute": 10**9,
                            "tokensPerMinute": 10**9,
                            "maxConcurrent": 10**6,
                            "budgetDaily": 1e9,
                        }
                    },
                )
        # Warm the server's pools and caches.
        asyncio.run(rest_load(url, use_case, metric, 8, 1.0))
        health = asyncio.run(health_load(url, max(client_counts), seconds / 2))
        print(
            f"{kind:<11} (HTTP stack alone: GET /health, {max(client_counts)} clients: {health:.0f} requests/s;"
            f" a logging client sends 2 requests per 3 events)",
            flush=True,
        )
        for _ in range(rounds):
            for label, clients, size in loads:
                cpu_before = server.cpu_seconds()
                events, failed, elapsed = asyncio.run(rest_load(url, use_case, metric, clients, seconds, size))
                rates[label].append(events / elapsed)
                costs[label].append((server.cpu_seconds() - cpu_before) / max(events, 1) * 1e6)
                errors[label] += failed
            # Same database, the server idle: the ceiling has the machine to itself, as the server had.
            raws.append(asyncio.run(raw_ceiling(resolved, use_case, metric, seconds)))
    finally:
        server.stop()
        if pg_name:
            drop_postgres(pg_name)
    results = [
        (
            kind,
            label,
            rates[label],
            [r / raw for r, raw in zip(rates[label], raws, strict=True)],
            costs[label],
            errors[label],
        )
        for label, _, _ in loads
    ]
    raw_label = f"raw ceiling (batched inserts, {RAW_BATCH * 3} rows/tx)"
    results.append((kind, raw_label, raws, [1.0] * len(raws), [], 0))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument(
        "--rounds", type=int, default=3, help="rounds of every load and the raw ceiling; medians are printed"
    )
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--clients", default="1,64")
    parser.add_argument(
        "--batch", type=int, default=10, help="also measure clients posting arrays of this many interactions (1: skip)"
    )
    parser.add_argument(
        "--limits", action="store_true", help="generous usage limits on the caller's user and the use case"
    )
    parser.add_argument(
        "--server-pythonpath",
        default=None,
        help="extra sys.path for the server process, e.g. a folder with uvloop and httptools to compare",
    )
    args = parser.parse_args()
    client_counts = [int(c) for c in args.clients.split(",")]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"ingest bench: {os.cpu_count()} CPUs (load average {load:.1f} at start), {args.seconds:.0f}s per measurement,"
        f" {args.rounds} rounds (medians; each ratio paired with its round's raw ceiling), one server process"
    )
    print(
        f"{'database':<11} {'load':<45} {'events/s':>10} {'range':>13} {'vs raw':>8} {'server CPU':>14} {'errors':>7}"
    )
    for kind in args.databases.split(","):
        for database, label, rates, ratios, costs, errors in bench_database(
            kind, args.seconds, client_counts, args.server_pythonpath, args.batch, args.rounds, args.limits
        ):
            spread = f"{min(rates):.0f}-{max(rates):.0f}"
            cost = f"{statistics.median(costs):.0f} us/event" if costs else ""
            print(
                f"{database:<11} {label:<45} {statistics.median(rates):>10.0f} {spread:>13}"
                f" {statistics.median(ratios):>8.1%} {cost:>14} {errors:>7}",
                flush=True,
            )


if __name__ == "__main__":
    main()
