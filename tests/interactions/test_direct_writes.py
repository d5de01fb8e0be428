"""The ingest writer's commits run on the driver's connection (db/direct.py), past SQLAlchemy's execution
layer: what they store must be what SQLAlchemy stores, all of a commit or none of it, with SQLAlchemy's
errors."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import String, Table, cast, func, insert, select, text
from sqlalchemy.exc import IntegrityError

from adaptive_engine.server.db import direct
from adaptive_engine.server.db.base import new_id
from adaptive_engine.server.db.models import (
    Completion,
    Feedback,
    FeedbackHourly,
    TrafficHourly,
    UsageRollup,
    UseCaseMetric,
)
from adaptive_engine.server.db.refs import RefCache
from adaptive_engine.server.domains.interactions.ingest import (
    IngestWriter,
    Rows,
    completion_row,
    insert_rows,
    planned_writes,
)
from adaptive_engine.server.domains.interactions.service import prompt_hash
from adaptive_engine.server.timestamps import utcnow
from tests.interactions.helpers import writer_database


def _rows(use_case_id: uuid.UUID, metric_id: uuid.UUID, completion_text: str, at: datetime | None = None) -> Rows:
    """One interaction with every kind of column: JSON (a list, a dict, None), floats, ints, text, UUIDs."""
    rows = Rows()
    messages = [{"role": "user", "content": "été? \u2603"}, {"role": "assistant", "content": "oui"}]
    completion = rows.add(
        Completion,
        completion_row(
            use_case_id=use_case_id,
            messages=messages,
            completion=completion_text,
            prompt_hash=prompt_hash(messages),
            model_key="model-a",
            session_id=new_id(),
            labels={"team": "a"},
            prompt_tokens=12,
            completion_tokens=3,
            latency_ms=41.5,
            user_ref="u-1",
            created_at=at,
        ),
    )
    rows.add(
        Feedback,
        {
            "id": new_id(),
            "created_at": completion["created_at"],
            "completion_id": completion["id"],
            "metric_id": metric_id,
            "use_case_id": use_case_id,
            "value": 0.75,
            "reason": "close",
            "details": None,
            "user_ref": "u-1",
        },
    )
    return rows


async def _stored(connection: Any, table: Any, row_id: uuid.UUID) -> dict[str, Any]:
    """The row as the database returns it, every column cast to text (how it is stored, not how the ORM
    reads it back: a JSON null and an SQL NULL differ here)."""
    columns = [cast(c, String).label(c.name) for c in table.c if c.name != "id"]
    row = (await connection.execute(select(*columns).where(table.c.id == row_id))).one()
    return dict(row._mapping)


def test_direct_writes_store_what_sqlalchemy_stores(database: str | None, tmp_path: Path) -> None:
    async def run() -> None:
        engine, maker, use_case, metric = await writer_database(database, tmp_path, "SCALAR")
        at = utcnow()
        through_orm = _rows(use_case.id, metric.id, "same", at)
        through_driver = _rows(use_case.id, metric.id, "same", at)
        async with maker() as session:
            await insert_rows(session, through_orm)
            await session.commit()
        async with engine.connect() as connection:
            await direct.run(connection, await planned_writes(connection, through_driver.tables, None))
        async with engine.connect() as connection:
            for table in (Completion, Feedback):
                ours = await _stored(connection, table.__table__, through_driver.tables[table][0]["id"])
                theirs = await _stored(connection, table.__table__, through_orm.tables[table][0]["id"])
                # Each copy has its own session and completion ids; every other column must be stored alike.
                own_ids = ("completion_id", "session_id")
                differing = {k for k in ours if ours[k] != theirs[k] and not k.endswith(own_ids)}
                assert differing == set(), (table, {k: (ours[k], theirs[k]) for k in differing})
            # Both writes went to the same roll-up cells: counted twice, once by each path.
            traffic = (
                await connection.execute(select(TrafficHourly).where(TrafficHourly.use_case_id == use_case.id))
            ).one()
            assert (traffic.interactions, traffic.prompt_tokens, traffic.latency_count) == (2, 24, 2)
            feedback = (
                await connection.execute(select(FeedbackHourly).where(FeedbackHourly.use_case_id == use_case.id))
            ).one()
            assert (feedback.count, feedback.total, feedback.model_key) == (2, 1.5, "model-a")
            usage = (
                await connection.execute(
                    select(func.sum(UsageRollup.requests)).where(
                        UsageRollup.use_case_id == use_case.id, UsageRollup.period == "HOUR"
                    )
                )
            ).scalar()
            assert usage == 2
        await engine.dispose()

    asyncio.run(run())


def test_a_direct_write_is_all_or_nothing_and_fails_as_sqlalchemy_would(database: str | None, tmp_path: Path) -> None:
    async def run() -> None:
        engine, _, use_case, metric = await writer_database(database, tmp_path)
        rows = _rows(use_case.id, metric.id, "orphaned")
        rows.tables[Feedback][0]["completion_id"] = new_id()  # no such completion: the foreign key refuses it
        async with engine.connect() as connection:
            work = await planned_writes(connection, rows.tables, lambda _: "model-a")
            with pytest.raises(IntegrityError):
                await direct.run(connection, work)
        async with engine.connect() as connection:
            # The completion inserted before the failing statement was rolled back with it.
            count = select(func.count()).select_from(Completion).where(Completion.use_case_id == use_case.id)
            assert (await connection.execute(count)).scalar() == 0
            # The same pool's connections still write.
            good = _rows(use_case.id, metric.id, "fine")
            await direct.run(connection, await planned_writes(connection, good.tables, None))
            assert (await connection.execute(count)).scalar() == 1
        await engine.dispose()

    asyncio.run(run())


def test_left_out_keys_take_their_default_and_unknown_keys_are_refused(database: str | None, tmp_path: Path) -> None:
    async def run() -> None:
        engine, _, use_case, metric = await writer_database(database, tmp_path)
        links: Table = UseCaseMetric.__table__  # type: ignore[assignment]
        before = utcnow()
        async with engine.connect() as connection:
            # created_at left out: its Python default (now) fills it in.
            await direct.run(connection, [(insert(links), [{"use_case_id": use_case.id, "metric_id": metric.id}])])
            query = select(links.c.created_at).where(links.c.metric_id == metric.id)
            stored = (await connection.execute(query)).scalar()
            assert stored is not None
            assert abs((stored.replace(tzinfo=None) - before.replace(tzinfo=None)).total_seconds()) < 60
            # A key that is no column is refused by name, as SQLAlchemy refuses it, before anything is sent.
            with pytest.raises(ValueError, match="metric_idx"):
                row = {"use_case_id": use_case.id, "metric_id": metric.id, "metric_idx": 1}
                await direct.run(connection, [(insert(links), [row])])
        await engine.dispose()

    asyncio.run(run())


def test_the_writer_replaces_a_connection_that_died_while_idle(database: str | None, tmp_path: Path) -> None:
    """The writer keeps its connection between commits: when the database drops it (a restart, an idle
    timeout), the next write still succeeds, on a new connection, and is stored once."""

    async def run() -> None:
        engine, maker, use_case, metric = await writer_database(database, tmp_path)
        writer = IngestWriter(maker, RefCache())
        await writer.start()
        try:
            await writer.write(_rows(use_case.id, metric.id, "first"))
            kept = writer._connection  # the connection it keeps (private: this test breaks it on purpose)
            assert kept is not None
            driver = (await kept.get_raw_connection()).driver_connection
            if engine.dialect.name == "postgresql":
                async with engine.connect() as other:
                    await other.execute(text(f"SELECT pg_terminate_backend({driver.get_server_pid()})"))
            else:
                await driver.close()
            await writer.write(_rows(use_case.id, metric.id, "second"))
            assert writer._connection is not kept
        finally:
            await writer.stop()
        async with engine.connect() as connection:
            stored = select(Completion.completion).where(Completion.use_case_id == use_case.id)
            assert sorted((await connection.execute(stored)).scalars()) == ["first", "second"]
        await engine.dispose()

    asyncio.run(run())
