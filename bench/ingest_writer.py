"""The ingest writer alone: CPU of the event-loop thread per commit (what limits logging throughput on a
loaded machine: the server's one loop thread serves the requests too), with no HTTP in the way, for this
checkout and for a baseline checkout, alternated in the same run.

    PYTHONPATH=src python bench/ingest_writer.py [--baseline ../other-checkout] [--databases sqlite,postgresql]
        [--batches 16] [--commits 300] [--rounds 3]

Each commit takes what the REST logging bench sends (bench/ingest.py): ``--batches`` interactions with one
inline feedback each, and one feedback on each interaction of the commit before, every one queued as a batch
of its own (as one request would), so a commit writes 2 x ``--batches`` batches. Each (checkout, database,
round) runs in a fresh process with that checkout's ``src`` on its path; the figure is
``time.thread_time()`` of the loop thread over the measured commits (the database's own thread, and the
PostgreSQL server, are not in it), and the wall time beside it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WARMUP_COMMITS = 20


async def _measure(database_url: str, batches: int, commits: int) -> dict[str, float]:
    from adaptive_engine.server.db.base import new_id
    from adaptive_engine.server.db.engine import create_engine, create_sessionmaker, upgrade
    from adaptive_engine.server.db.models import Completion, Feedback, Metric, UseCase
    from adaptive_engine.server.db.refs import RefCache
    from adaptive_engine.server.domains.interactions.ingest import IngestWriter, Rows, completion_row
    from adaptive_engine.server.domains.interactions.service import prompt_hash
    from adaptive_engine.server.timestamps import utcnow

    engine = create_engine(database_url)
    await upgrade(engine)
    maker = create_sessionmaker(engine)
    async with maker() as session:
        use_case = UseCase(key="bench", name="bench")
        metric = Metric(key="bench-ok", name="bench-ok", kind="BOOL")
        session.add_all([use_case, metric])
        await session.commit()
    writer = IngestWriter(maker, RefCache())
    await writer.start()

    def feedback(completion_id: uuid.UUID, at: Any) -> dict[str, Any]:
        return {
            "id": new_id(),
            "created_at": at,
            "completion_id": completion_id,
            "metric_id": metric.id,
            "use_case_id": use_case.id,
            "value": 1.0,
            "reason": None,
            "details": None,
            "user_ref": None,
        }

    previous: list[uuid.UUID] = []

    async def one_commit() -> None:
        nonlocal previous
        pending = []
        made = []
        for i in range(batches):
            rows = Rows()
            messages = [{"role": "user", "content": f"question {i}"}]
            completion = rows.add(
                Completion,
                completion_row(
                    use_case_id=use_case.id,
                    messages=messages,
                    completion=f"answer {i}",
                    prompt_hash=prompt_hash(messages),
                    source="OFFLINE",
                    session_id=new_id(),
                ),
            )
            rows.add(Feedback, feedback(completion["id"], completion["created_at"]))
            rows.links.add((use_case.id, metric.id))
            pending.append(asyncio.ensure_future(writer.write(rows)))
            made.append(completion["id"])
        for completion_id in previous:
            rows = Rows()
            rows.add(Feedback, feedback(completion_id, utcnow()))
            rows.links.add((use_case.id, metric.id))
            pending.append(asyncio.ensure_future(writer.write(rows)))
        previous = made
        await asyncio.gather(*pending)

    try:
        for _ in range(WARMUP_COMMITS):
            await one_commit()
        first = writer.commits
        cpu, wall = time.thread_time(), time.perf_counter()
        for _ in range(commits):
            await one_commit()
        cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
        done = writer.commits - first
    finally:
        await writer.stop()
        await engine.dispose()
    return {"commits": done, "cpu_ms": 1e3 * cpu / done, "wall_ms": 1e3 * wall / done}


def _child(kind: str, batches: int, commits: int) -> None:
    if kind == "sqlite":
        url = f"sqlite+aiosqlite:///{Path(tempfile.mkdtemp(prefix='ae-writer-')) / 'engine.db'}"
        print(json.dumps(asyncio.run(_measure(url, batches, commits))))
        return
    # The tests' fresh-database helper, from this bench's own checkout (the measured one is on PYTHONPATH).
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support import private_postgres_database

    with private_postgres_database() as url:
        print(json.dumps(asyncio.run(_measure(url, batches, commits))))


def _run(checkout: Path, kind: str, batches: int, commits: int) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(checkout / "src")}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", kind, "--batches", str(batches)]
    out = subprocess.run(
        [*command, "--commits", str(commits)], env=env, cwd=checkout, capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        raise RuntimeError(f"{checkout} on {kind} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout, measured alternately")
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument(
        "--batches", type=int, default=16, help="interactions per commit (each commit: twice as many batches)"
    )
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.batches, args.commits)
        return
    checkouts = {"this checkout": ROOT}
    if args.baseline is not None:
        checkouts = {"baseline": args.baseline.resolve(), **checkouts}
    print(
        f"ingest writer bench: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start;"
        f" {2 * args.batches} batches ({3 * args.batches} rows) per commit, {args.commits} commits,"
        f" {args.rounds} rounds alternated (medians)"
    )
    print(f"{'database':<11} {'checkout':<14} {'loop CPU ms/commit':>19} {'range':>12} {'wall ms/commit':>15}")
    for kind in args.databases.split(","):
        figures: dict[str, list[dict[str, float]]] = {name: [] for name in checkouts}
        for _ in range(args.rounds):
            for name, checkout in checkouts.items():
                figures[name].append(_run(checkout, kind, args.batches, args.commits))
        for name, runs in figures.items():
            cpu = [r["cpu_ms"] for r in runs]
            print(
                f"{kind:<11} {name:<14} {statistics.median(cpu):>19.2f} {f'{min(cpu):.2f}-{max(cpu):.2f}':>12}"
                f" {statistics.median(r['wall_ms'] for r in runs):>15.2f}",
                flush=True,
            )
        if args.baseline is not None:
            ratio = statistics.median(r["cpu_ms"] for r in figures["this checkout"]) / statistics.median(
                r["cpu_ms"] for r in figures["baseline"]
            )
            print(f"{kind:<11} this checkout / baseline: {ratio:.2f}x loop CPU per commit", flush=True)
    print(f"load average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
