"""Upgrading an existing SQLite data dir to the jobs revision that makes ``jobs.use_case_id`` nullable: SQLite
rebuilds the table, and the rows that reference it (metrics, artifacts) must survive (foreign keys are off
while migrations run, or dropping the old table would cascade-delete them)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import func, insert, select, text

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.engine import alembic_config, create_engine, upgrade

BEFORE = "0002_jobs"  # the jobs revision before use_case_id became nullable
CHANGE = "0003_jobs"


def test_sqlite_upgrade_keeps_the_rows_of_a_rebuilt_table(tmp_path: Path) -> None:
    async def scenario() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'engine.db'}")

        def old_schema(connection) -> None:
            config = alembic_config(connection)
            script = ScriptDirectory.from_config(config)
            for head in script.get_heads():
                lineage = {r.revision for r in script.iterate_revisions(head, "base")}
                command.upgrade(config, BEFORE if CHANGE in lineage else head)

        async with engine.begin() as connection:
            await connection.run_sync(old_schema)
            use_case, job = uuid.uuid4(), uuid.uuid4()
            await connection.execute(insert(orm.UseCase.__table__).values(id=use_case, key="uc", name="uc"))
            await connection.execute(
                insert(orm.Job.__table__).values(
                    id=job,
                    name="j",
                    use_case_id=use_case,
                    recipe_hash="h",
                    recipe_path="p",
                    kind="CUSTOM",
                    status="COMPLETED",
                    args={},
                    num_gpus=0,
                    progress=1.0,
                )
            )
            await connection.execute(insert(orm.JobMetric.__table__).values(job_id=job, step=1, values={"loss": 1.0}))
            await connection.execute(
                insert(orm.JobArtifact.__table__).values(
                    job_id=job, name="a", kind="CUSTOM", status="READY", size_bytes=0, artifact_metadata={}
                )
            )
        await upgrade(engine)
        async with engine.connect() as connection:
            for table in (orm.Job, orm.JobMetric, orm.JobArtifact):
                assert (await connection.execute(select(func.count()).select_from(table))).scalar_one() == 1
            assert (await connection.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
            assert (await connection.execute(text("PRAGMA foreign_key_check"))).all() == []
            # The new schema holds: a job of no use case.
            await connection.execute(
                insert(orm.Job.__table__).values(
                    id=uuid.uuid4(),
                    name="conversion",
                    use_case_id=None,
                    recipe_hash="h",
                    recipe_path="p",
                    kind="MODEL_CONVERSION",
                    status="PENDING",
                    args={},
                    num_gpus=0,
                    progress=0.0,
                )
            )
        await engine.dispose()

    asyncio.run(scenario())
