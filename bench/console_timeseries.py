"""Time-series queries of the console over 1,000,000 stored interactions, on SQLite and PostgreSQL, against
the < 200 ms target (issue 14): the use-case overview's charts (UseCase.activityTimeseries, UseCase.activity,
MetricWithContext.timeseries) and its feedback table (feedbackStatistics) asked through the GraphQL API of a
server process, and the same queries as service calls in this process (the database's share).

    PYTHONPATH=src python bench/console_timeseries.py [--interactions 1000000] [--days 30] [--repeat 15]
                                                      [--databases sqlite,postgresql]

Seeding: the interactions (3 models, tokens and latency set, spread evenly over the last ``--days`` days,
each with one feedback value) are written straight into the tables by the server's own write path,
``insert_rows`` (Core executemany, 5,000 interactions per transaction, no HTTP): the rows and their hourly
roll-ups, as served traffic would leave them. PostgreSQL is then ANALYZEd (what autovacuum does after a bulk
load); SQLite is left as the server leaves it. The last row of each database is the query the roll-ups
replace (one GROUP BY over every completion of the range), for scale.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from ingest import drop_postgres, fresh_postgres  # noqa: E402
from server_process import ServerProcess  # noqa: E402
from sqlalchemy import func, select, text  # noqa: E402

from adaptive_engine.server.db.engine import create_engine, create_sessionmaker, upgrade  # noqa: E402
from adaptive_engine.server.db.models import Completion, Feedback, Metric, Model, UseCase, UseCaseMetric  # noqa: E402
from adaptive_engine.server.db.timebuckets import sql_bucket  # noqa: E402
from adaptive_engine.server.domains.feedback.timeseries import metric_timeseries  # noqa: E402
from adaptive_engine.server.domains.interactions import activity  # noqa: E402
from adaptive_engine.server.domains.interactions.ingest import Rows, completion_row, insert_rows  # noqa: E402

KEY = "bench-admin-key"
USE_CASE = "bench-traffic"
METRIC = "bench-quality"
MODELS = ("small", "medium", "large")
CHUNK = 5000
TARGET_MS = 200.0

SERIES = """query($uc: IdOrKey!, $input: ActivityTimeseriesInput!) { useCase(idOrKey: $uc) {
  activityTimeseries(input: $input) { modelKey timeBuckets interactions promptTokens completionTokens latencyMeanMs
  latencyMaxMs errors } } }"""
TOTALS = """query($uc: IdOrKey!, $range: TimeRange) { useCase(idOrKey: $uc) { activity(timerange: $range) {
  interactions { value perSecond trend } feedbacks { value trend } errors { value trend } } } }"""
STATS = """query($uc: IdOrKey!, $range: TimeRange) { feedbackStatistics(filter: {useCase: $uc, byModel: true,
  timerange: $range}) { model count mean variance min max } }"""
FEEDBACK = """query($uc: IdOrKey!, $input: TimeseriesInput!) { useCase(idOrKey: $uc) { metrics { key
  timeseries(input: $input) { modelKey timeBuckets count values intervals { start middle end } } } } }"""


async def seed(url: str, n: int, days: int) -> dict[str, float]:
    """Schema, a use case with its models and feedback key, then ``n`` interactions with feedback."""
    engine = create_engine(url)
    await upgrade(engine)
    sessionmaker = create_sessionmaker(engine)
    async with sessionmaker() as session:
        use_case = UseCase(key=USE_CASE, name="Bench traffic")
        metric = Metric(key=METRIC, name="Quality", kind="SCALAR", scoring_type="HIGHER_IS_BETTER", description="")
        session.add_all([use_case, metric, *(Model(key=m, name=m, kind="chat", status="ONLINE") for m in MODELS)])
        await session.flush()
        session.add(UseCaseMetric(use_case_id=use_case.id, metric_id=metric.id))
        await session.commit()
        use_case_id, metric_id = use_case.id, metric.id
    rng = random.Random(11)
    end = datetime.now(UTC)
    step = timedelta(days=days) / n
    messages = [{"role": "user", "content": "Where is my parcel?"}]
    started = time.perf_counter()
    for first in range(0, n, CHUNK):
        rows = Rows()
        for i in range(first, min(first + CHUNK, n)):
            at = end - step * (n - i)
            model = MODELS[i % len(MODELS)]
            row = rows.add(
                Completion,
                completion_row(
                    use_case_id=use_case_id,
                    messages=messages,
                    completion="It left the warehouse today.",
                    prompt_hash="p",
                    model_key=model,
                    prompt_tokens=rng.randint(20, 400),
                    completion_tokens=rng.randint(10, 300),
                    latency_ms=rng.lognormvariate(5.5, 0.4),
                    created_at=at,
                ),
            )
            rows.add(
                Feedback,
                {
                    "completion_id": row["id"],
                    "metric_id": metric_id,
                    "use_case_id": use_case_id,
                    "value": min(1.0, max(0.0, rng.gauss(0.6 + 0.1 * (i % 3), 0.2))),
                    "reason": None,
                    "details": None,
                    "user_ref": None,
                    "created_at": at,
                },
            )
        async with sessionmaker() as session:
            await insert_rows(session, rows)
            await session.commit()
    seeded = time.perf_counter() - started
    if url.startswith("postgresql"):
        async with engine.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            await connection.exec_driver_sql("ANALYZE")
    await engine.dispose()
    return {"seconds": seeded, "use_case_id": use_case_id, "metric_id": metric_id}  # type: ignore[dict-item]


def windows(days: int) -> list[tuple[str, str, int]]:
    """(label, interval, seconds back from now) the overview offers."""
    return [
        ("last 24 h, hourly", "HOUR", 86400),
        ("last 7 days, daily", "DAY", 7 * 86400),
        (f"last {days} days (all), daily", "DAY", days * 86400),
        ("last 90 days, weekly", "WEEK", 90 * 86400),
    ]


def timed(call, repeat: int) -> tuple[float, float]:
    """Median and slowest of ``repeat`` runs (ms), after one warm-up run."""
    call()
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        runs.append((time.perf_counter() - started) * 1000)
    return statistics.median(runs), max(runs)


def api_rows(server_url: str, days: int, repeat: int) -> list[tuple[str, float, float]]:
    client = httpx.Client(base_url=server_url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120)

    def ask(query: str, variables: dict) -> None:
        body = client.post("/api/graphql", json={"query": query, "variables": variables}).json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])

    out = [
        (
            "API baseline: useCase { key } (HTTP, auth, GraphQL)",
            *timed(lambda: ask("query($uc: IdOrKey!) { useCase(idOrKey: $uc) { key } }", {"uc": USE_CASE}), repeat),
        ),
        (
            "API feedbackStatistics per model, all time (the overview's table)",
            *timed(lambda: ask(STATS, {"uc": USE_CASE, "range": None}), repeat),
        ),
    ]
    for label, interval, back in windows(days):
        now = int(time.time())
        rng = {"from": now - back, "to": now}
        series = {"interval": interval, "byModel": True, "timerange": rng}
        out.append(
            (
                f"API activityTimeseries, {label}",
                *timed(lambda series=series: ask(SERIES, {"uc": USE_CASE, "input": series}), repeat),
            )
        )
        out.append(
            (
                f"API activity (totals + trend), {label}",
                *timed(lambda rng=rng: ask(TOTALS, {"uc": USE_CASE, "range": rng}), repeat),
            )
        )
        out.append(
            (
                f"API feedback timeseries, {label}",
                *timed(lambda series=series: ask(FEEDBACK, {"uc": USE_CASE, "input": series}), repeat),
            )
        )
    client.close()
    return out


async def service_rows(url: str, ids: dict, days: int, repeat: int) -> list[tuple[str, float, float]]:
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    use_case_id, metric_id = ids["use_case_id"], ids["metric_id"]
    out = []

    async def timed_async(work) -> tuple[float, float]:
        runs = []
        for i in range(repeat + 1):
            async with sessionmaker() as session:
                started = time.perf_counter()
                await work(session)
                if i:
                    runs.append((time.perf_counter() - started) * 1000)
        return statistics.median(runs), max(runs)

    end = datetime.now(UTC)
    scope = lambda column: column == use_case_id  # noqa: E731
    for label, interval, back in windows(days):
        since = end - timedelta(seconds=back)
        out.append(
            (
                f"service activity_timeseries, {label}",
                *await timed_async(
                    lambda s, interval=interval, since=since: activity.activity_timeseries(
                        s, scope=scope, interval=interval, since=since, until=end, by_model=True
                    )
                ),
            )
        )
        out.append(
            (
                f"service metric_timeseries, {label}",
                *await timed_async(
                    lambda s, interval=interval, since=since: metric_timeseries(
                        s,
                        use_case_id=use_case_id,
                        metric_id=metric_id,
                        interval=interval,
                        since=since,
                        until=end,
                        by_model=True,
                    )
                ),
            )
        )
    since = end - timedelta(days=days)

    async def full_scan(session) -> None:
        dialect = session.bind.dialect.name
        bucket = sql_bucket(Completion.created_at, dialect, "DAY")
        await session.execute(
            select(
                Completion.model_key,
                bucket,
                func.count(),
                func.sum(Completion.prompt_tokens),
                func.avg(Completion.latency_ms),
            )
            .where(Completion.use_case_id == use_case_id, Completion.created_at >= since)
            .group_by(Completion.model_key, bucket)
        )

    out.append(
        (f"for scale: one GROUP BY over the {days} days' completions (no roll-ups)", *await timed_async(full_scan))
    )
    async with sessionmaker() as session:
        rolled = (await session.execute(text("SELECT count(*) FROM traffic_hourly"))).scalar_one()
    out.append((f"(traffic_hourly rows: {rolled})", 0.0, 0.0))
    await engine.dispose()
    return out


def bench(kind: str, n: int, days: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as data:
        pg_name = None
        if kind == "postgresql":
            pg_name, url = fresh_postgres()
        else:
            url = f"sqlite+aiosqlite:///{Path(data) / 'bench.db'}"
        try:
            ids = asyncio.run(seed(url, n, days))
            print(
                f"{kind:<11} seeded {n:,} interactions + {n:,} feedback values over {days} days in "
                f"{ids['seconds']:.0f} s ({n / ids['seconds']:,.0f} interactions/s)",
                flush=True,
            )
            rows = asyncio.run(service_rows(url, ids, days, repeat))
            with ServerProcess(
                Path(data) / "server", KEY, env={"ADAPTIVE_BUNDLED_MODELS": "false"}, database_url=url
            ) as server:
                rows += api_rows(server.url, days, repeat)
            for label, median, worst in rows:
                if not median and not worst:
                    print(f"{kind:<11} {label}")
                    continue
                verdict = "ok" if median < TARGET_MS else "OVER"
                print(f"{kind:<11} {label:<66} median {median:7.1f} ms  max {worst:7.1f} ms  {verdict}", flush=True)
        finally:
            if pg_name:
                drop_postgres(pg_name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--databases", default="sqlite,postgresql")
    args = parser.parse_args()
    print(
        f"console time series bench: {args.interactions:,} interactions, target < {TARGET_MS:.0f} ms "
        f"(median of {args.repeat} runs after one warm-up)",
        flush=True,
    )
    for kind in args.databases.split(","):
        bench(kind, args.interactions, args.days, args.repeat)


if __name__ == "__main__":
    main()
