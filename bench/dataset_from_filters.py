"""Datasets from traffic at scale: time and memory of writing a dataset from filters, and export speed.

    python bench/dataset_from_filters.py [--interactions 1000000] [--select-every 10] [--database-url URL]

Seeds ``--interactions`` completions (bulk inserts of 10,000 rows, one feedback value each) in one use case on a
fresh database (SQLite in a temporary folder unless a URL is given), one in ``--select-every`` labelled
``split=train``. Then, through the same code the API runs (``from_traffic.write_file`` and the export's
``interaction_rows`` + ``encode``):

- writes the PROMPT_COMPLETION_FEEDBACK dataset of the labelled completions (every one a distinct prompt):
  seconds, rows, and the peak growth of the process's resident memory while it runs (sampled every 10 ms);
- exports the same selection as JSONL (lines built by the database), alternately with the row-by-row encoding
  as a baseline of the same run: rows per second and per CPU-second.

Targets (issue 17): 1,000,000 interactions selecting 100,000 in under 30 s with peak RSS growth under 200 MB;
export at 50,000 rows/s or more. The export's CPU time (of every thread: the driver reads in one of its own) is
printed too, as its rows per CPU-second move less with the other work of a shared machine than its wall clock.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from sqlalchemy import insert  # noqa: E402

from adaptive_engine.server.db import models as orm  # noqa: E402
from adaptive_engine.server.db.engine import create_engine, create_sessionmaker, upgrade  # noqa: E402
from adaptive_engine.server.domains.datasets import export, from_traffic  # noqa: E402
from adaptive_engine.server.domains.interactions.repository import completion_filter  # noqa: E402

BATCH = 10_000
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * PAGE


class PeakRss:
    """The highest resident memory seen while the block runs, above what it was at its start."""

    def __enter__(self) -> PeakRss:
        self.start = self.peak = rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.01):
            self.peak = max(self.peak, rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.start) / 1e6


class Labels:
    """A ListCompletionsFilterInput selecting ``split=train`` (attribute access, as the GraphQL input)."""

    def __init__(self) -> None:
        self.labels = [type("LabelFilter", (), {"key": "split", "value": ["train"]})()]

    def __getattr__(self, name: str) -> None:
        return None


async def seed(sessionmaker, count: int, every: int) -> tuple[orm.UseCase, orm.Metric]:  # noqa: ANN001
    async with sessionmaker() as session:
        use_case = orm.UseCase(key=f"bench-{uuid.uuid4().hex[:8]}", name="bench")
        metric = orm.Metric(key=f"quality-{uuid.uuid4().hex[:8]}", name="quality", kind="SCALAR")
        session.add_all([use_case, metric])
        await session.commit()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for first in range(0, count, BATCH):
        completions, feedbacks = [], []
        for i in range(first, min(first + BATCH, count)):
            completion_id = uuid.uuid4()
            at = start + timedelta(seconds=i)
            completions.append(
                {
                    "id": completion_id,
                    "created_at": at,
                    "use_case_id": use_case.id,
                    "model_key": "bench-model",
                    "messages": [{"role": "user", "content": f"Question number {i}: what is {i} plus one?"}],
                    "completion": f"The answer is {i + 1}.",
                    "source": "LIVE",
                    "prompt_hash": f"{i:064x}",
                    "labels": {"split": "train" if i % every == 0 else "other"},
                }
            )
            feedbacks.append(
                {
                    "id": uuid.uuid4(),
                    "created_at": at,
                    "completion_id": completion_id,
                    "metric_id": metric.id,
                    "use_case_id": use_case.id,
                    "value": (i % 10) / 10,
                }
            )
        async with sessionmaker() as session:
            await session.execute(insert(orm.Completion), completions)
            await session.execute(insert(orm.Feedback), feedbacks)
            await session.commit()
    return use_case, metric


async def timed_export(chunks) -> tuple[int, float, float]:  # noqa: ANN001
    """Rows, wall seconds and CPU seconds (of every thread: the driver reads in one of its own) of an export."""
    rows = 0
    began, cpu_began = time.perf_counter(), time.process_time()
    with open(os.devnull, "wb") as sink:
        async for chunk in chunks:
            sink.write(chunk)
            rows += chunk.count(b"\n")
    return rows, time.perf_counter() - began, time.process_time() - cpu_began


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{tmp}/bench.db"
        engine = create_engine(url)
        await upgrade(engine)
        sessionmaker = create_sessionmaker(engine)
        began = time.perf_counter()
        use_case, metric = await seed(sessionmaker, args.interactions, args.select_every)
        print(
            f"seeded {args.interactions:,} interactions in {time.perf_counter() - began:.1f} s ({engine.dialect.name})"
        )

        async with sessionmaker() as session:
            conditions = await completion_filter(session, use_case.id, Labels())
        plan = from_traffic.Plan(
            use_case=use_case, kind="PROMPT_COMPLETION_FEEDBACK", conditions=conditions, metrics=[metric]
        )
        out = Path(tmp) / "dataset.jsonl"
        with PeakRss() as memory:
            began = time.perf_counter()
            summary = await from_traffic.write_file(engine, plan, out)
            seconds = time.perf_counter() - began
        print(
            f"createDatasetFromFilters: {summary.records:,} rows in {seconds:.2f} s "
            f"({out.stat().st_size / 1e6:.0f} MB file), peak RSS growth {memory.growth_mb:.0f} MB"
        )

        # The export as the API streams it, alternated with the row-by-row encoding (what CSV and, before the
        # database built the lines, JSONL ran) as the baseline of the same run and load.
        ways = {
            "export (JSONL, with feedback)": lambda: export.interactions(engine, conditions, False, "jsonl"),
            "baseline, rows built and encoded in Python": lambda: export.encode(
                export.interaction_rows(engine, conditions, False), "jsonl", export.INTERACTION_COLUMNS
            ),
        }
        for _ in range(args.export_rounds):
            for name, stream in ways.items():
                rows, seconds, cpu = await timed_export(stream())
                print(
                    f"{name}: {rows:,} rows in {seconds:.2f} s = {rows / seconds:,.0f} rows/s; "
                    f"{cpu:.2f} CPU-s (all threads) = {rows / cpu:,.0f} rows per CPU-second"
                )
        print("load average (1, 5, 15 min) at the end: " + ", ".join(f"{v:.1f}" for v in os.getloadavg()))
        await engine.dispose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--select-every", type=int, default=10)
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--export-rounds", type=int, default=2, help="exports timed, each way, alternately")
    asyncio.run(main(parser.parse_args()))
