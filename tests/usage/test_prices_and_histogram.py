"""The price table file, the cost of a call, and the latency histogram's percentiles (no server needed)."""

from __future__ import annotations

import json
from datetime import UTC
from pathlib import Path

import pytest

from adaptive_engine.server.db.models.usage import LATENCY_BOUNDS_MS, LATENCY_COLUMNS
from adaptive_engine.server.domains.models.service import table_prices
from adaptive_engine.server.domains.usage.prices import Prices, cached_tokens, load_table
from adaptive_engine.server.domains.usage.rollups import latency_column, percentile
from adaptive_engine.server.errors import InvalidInput


def test_a_price_table_file_prices_a_model_by_key_then_by_provider_id(tmp_path: Path) -> None:
    table = tmp_path / "prices.json"
    table.write_text(
        json.dumps({"gpt-4o": {"input": 2.5, "output": 10, "cached_input": 1.25}, "my-key": {"output": 1}})
    )
    assert table_prices(table, "my-key", "gpt-4o") == Prices(0.0, 1.0, 0.0)
    assert table_prices(table, "other", "gpt-4o") == Prices(2.5, 10.0, 1.25)
    assert table_prices(table, "other", "unknown") is None
    assert table_prices(None, "gpt-4o") is None
    table.write_text(json.dumps({"gpt-4o": {"input": -1}}))
    with pytest.raises(InvalidInput, match="gpt-4o.input"):
        load_table(table)
    table.write_text(json.dumps({"gpt-4o": {"inptu": 1}}))
    with pytest.raises(InvalidInput, match="inptu"):
        load_table(table)
    table.write_text("{not json")
    with pytest.raises(InvalidInput, match="prices.json"):
        load_table(table)


def test_cost_charges_cached_prompt_tokens_at_their_own_price() -> None:
    prices = Prices(input=2.0, output=8.0, cached_input=0.5)
    assert prices.cost(1_000_000, 0) == pytest.approx(2.0)
    assert prices.cost(1_000_000, 500_000, cached_tokens=400_000) == pytest.approx(1.2 + 0.2 + 4.0)
    assert prices.cost(10, 0, cached_tokens=50) == pytest.approx(10 * 0.5 / 1_000_000)  # never more than the prompt
    assert cached_tokens({"prompt_tokens_details": {"cached_tokens": 7}}) == 7
    assert cached_tokens({"cache_read_input_tokens": 3}) == 3
    assert cached_tokens(None) == 0


def test_latency_percentiles_from_the_histogram() -> None:
    counts = [0] * len(LATENCY_COLUMNS)
    assert percentile(counts, 0.5) is None
    for latency in [5.0] * 50 + [80.0] * 45 + [30_000.0] * 5:
        counts[LATENCY_COLUMNS.index(latency_column(latency))] += 1
    assert percentile(counts, 0.5) <= LATENCY_BOUNDS_MS[0]  # the median is in the first bucket (<= 10 ms)
    assert 50 < percentile(counts, 0.95) <= 100  # 95% of the calls took at most 100 ms
    assert percentile(counts, 0.99) > 20_000
    counts[-1] = 1000
    assert percentile(counts, 0.99) == LATENCY_BOUNDS_MS[-1]  # above the last bound: its lower edge


def test_housekeeping_removes_minute_rows_past_their_retention_an_hour_at_a_time(tmp_path: Path) -> None:
    import asyncio
    import uuid
    from datetime import datetime

    from sqlalchemy import func, select
    from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

    from adaptive_engine.server.db.models import Base, UsageRollup, UseCase
    from adaptive_engine.server.domains.usage.rollups import MINUTE_RETENTION, prune_minutes

    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
    edge = int((now - MINUTE_RETENTION).timestamp())

    async def run() -> list[int]:
        engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}")
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
        sessions = async_sessionmaker(engine)
        use_case = uuid.uuid4()
        async with sessions.begin() as session:
            session.add(UseCase(id=use_case, key="u", name="u"))
        async with sessions.begin() as session:
            for period, bucket in [("MINUTE", edge - 7200 + 60 * i) for i in range(150)] + [("HOUR", edge - 7200)]:
                session.add(
                    UsageRollup(
                        period=period,
                        bucket=bucket,
                        use_case_id=use_case,
                        model_key="m",
                        api_key_id=uuid.UUID(int=0),
                        user_id=uuid.UUID(int=0),
                    )
                )
        removed = []
        for _ in range(3):
            async with sessions.begin() as session:
                removed.append(await prune_minutes(session, now))
        async with sessions() as session:
            left = (await session.execute(select(func.count()).select_from(UsageRollup))).scalar_one()
        await engine.dispose()
        return [*removed, left]

    # 120 minute rows are older than the retention: an hour (60) per pass; the 30 newer ones and the hour stay.
    assert asyncio.run(run()) == [60, 60, 0, 31]
