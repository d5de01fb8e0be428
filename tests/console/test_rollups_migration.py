"""Upgrading a database that holds traffic to the roll-up revision rolls up what was stored before it, on
SQLite and PostgreSQL (the hour is computed by each database's own SQL there)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import insert, select

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.engine import alembic_config, create_engine, upgrade
from tests.support import private_postgres_database

BEFORE, CHANGE = "0002_feedback", "0003_feedback"
AT = datetime(2026, 3, 30, 10, 40, tzinfo=timezone.utc)
HOUR = int(datetime(2026, 3, 30, 10, tzinfo=timezone.utc).timestamp())


async def _scenario(url: str) -> None:
    engine = create_engine(url)

    def old_schema(connection) -> None:
        config = alembic_config(connection)
        script = ScriptDirectory.from_config(config)
        for head in script.get_heads():
            lineage = {r.revision for r in script.iterate_revisions(head, "base")}
            command.upgrade(config, BEFORE if CHANGE in lineage else head)

    use_case, metric = uuid.uuid4(), uuid.uuid4()
    async with engine.begin() as connection:
        await connection.run_sync(old_schema)
        await connection.execute(insert(orm.UseCase.__table__).values(id=use_case, key="uc", name="uc"))
        await connection.execute(insert(orm.Metric.__table__).values(id=metric, key="m", name="m", kind="SCALAR",
                                                                     scoring_type="HIGHER_IS_BETTER", description=""))
        completions = [uuid.uuid4() for _ in range(3)]
        for i, (cid, model, latency) in enumerate(zip(completions, ("a", "a", None), (10.0, 30.0, None))):
            await connection.execute(insert(orm.Completion.__table__).values(
                id=cid, created_at=AT, use_case_id=use_case, model_key=model, messages=[], prompt_hash="h", labels={},
                source="LIVE", prompt_tokens=5, completion_tokens=i, latency_ms=latency))
            await connection.execute(insert(orm.Feedback.__table__).values(
                id=uuid.uuid4(), created_at=AT, completion_id=cid, metric_id=metric, use_case_id=use_case, value=float(i)))
    await upgrade(engine)
    async with engine.connect() as connection:
        traffic = {r.model_key: r for r in (await connection.execute(select(orm.TrafficHourly))).all()}
        assert set(traffic) == {"a", ""} and traffic["a"].hour == HOUR
        a = traffic["a"]
        assert (a.interactions, a.prompt_tokens, a.completion_tokens, a.latency_count) == (2, 10, 1, 2)
        assert (a.latency_sum_ms, a.latency_max_ms, a.errors) == (40.0, 30.0, 0)
        assert (traffic[""].interactions, traffic[""].latency_count) == (1, 0)
        feedback = {r.model_key: r for r in (await connection.execute(select(orm.FeedbackHourly))).all()}
        assert (feedback["a"].count, feedback["a"].total, feedback["a"].total_sq) == (2, 1.0, 1.0)
        assert (feedback["a"].min_value, feedback["a"].max_value) == (0.0, 1.0)
        assert (feedback[""].count, feedback[""].total, feedback[""].hour) == (1, 2.0, HOUR)
    await engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_upgrade_rolls_up_stored_traffic(dialect: str, tmp_path: Path) -> None:
    if dialect == "sqlite":
        asyncio.run(_scenario(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}"))
        return
    with private_postgres_database() as url:
        asyncio.run(_scenario(url))
