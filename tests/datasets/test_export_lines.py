"""The JSONL export of interactions, whose lines the database builds, says what the row-by-row export (the one
CSV uses) says, on both databases: ids, times, nulls, unicode, feedback (latest value per key), stored JSON."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, update

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.engine import create_engine, upgrade
from adaptive_engine.server.domains.datasets import export


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return f"sqlite+aiosqlite:///{tmp_path / 'export.db'}"


@pytest.fixture
async def engine(database_url: str):  # noqa: ANN201
    engine = create_engine(database_url)
    await upgrade(engine)
    yield engine
    await engine.dispose()


async def _seed(engine) -> tuple[uuid.UUID, list[uuid.UUID]]:  # noqa: ANN001
    use_case = uuid.uuid4()
    quality, helpful = uuid.uuid4(), uuid.uuid4()
    start = datetime(2026, 3, 1, 12, 30, 15, tzinfo=UTC)
    ids = [uuid.uuid4() for _ in range(4)]
    completions = [
        {  # every field set, unicode and quotes in the text, two values of one key
            "id": ids[0],
            "created_at": start,
            "use_case_id": use_case,
            "model_key": "model-a",
            "messages": [{"role": "user", "content": 'Ça "marche"? \u2603\n\ttab'}],
            "completion": 'Oui \u00e9 \\ "quoted"',
            "source": "LIVE",
            "prompt_hash": "a" * 64,
            "session_id": uuid.uuid4(),
            "user_ref": "user-1",
            "labels": {"split": "train", "lang": "fr"},
        },
        {  # nulls everywhere they may be, no feedback
            "id": ids[1],
            "created_at": start + timedelta(seconds=1),
            "use_case_id": use_case,
            "model_key": None,
            "messages": [],
            "completion": None,
            "source": "OFFLINE",
            "prompt_hash": "b" * 64,
            "labels": {},
        },
        {  # nested content, numbers in the stored JSON
            "id": ids[2],
            "created_at": start + timedelta(seconds=2),
            "use_case_id": use_case,
            "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}], "weight": 0.1, "n": 3}],
            "completion": "",
            "source": "LIVE",
            "prompt_hash": "c" * 64,
            "labels": {"k": "v"},
        },
        {  # another use case: never exported
            "id": ids[3],
            "created_at": start,
            "use_case_id": uuid.uuid4(),
            "messages": [],
            "completion": "other",
            "source": "LIVE",
            "prompt_hash": "d" * 64,
            "labels": {},
        },
    ]
    feedback = [
        (ids[0], quality, 0.2, 0),
        (ids[0], helpful, 1.0, 1),
        (ids[0], quality, 0.30000000000000004, 2),  # the latest of the key wins; every digit kept
        (ids[2], helpful, 0.0, 0),
    ]
    async with engine.begin() as conn:
        await conn.execute(
            insert(orm.UseCase),
            [{"id": i, "key": f"uc-{i.hex[:8]}", "name": "uc"} for i in {c["use_case_id"] for c in completions}],
        )
        await conn.execute(
            insert(orm.Metric),
            [{"id": m, "key": f"m-{m.hex[:8]}", "name": "m", "kind": "SCALAR"} for m in (quality, helpful)],
        )
        for completion in completions:  # one at a time: their columns differ
            await conn.execute(insert(orm.Completion), completion)
        await conn.execute(
            insert(orm.Feedback),
            [
                {
                    "id": uuid.uuid4(),
                    "created_at": start + timedelta(minutes=at),
                    "completion_id": completion,
                    "metric_id": metric,
                    "use_case_id": use_case,
                    "value": value,
                }
                for completion, metric, value, at in feedback
            ],
        )
    return use_case, ids


async def _export(engine, conditions: list, fmt: str, as_dataset: bool = False) -> bytes:  # noqa: ANN001
    return b"".join([chunk async for chunk in export.interactions(engine, conditions, as_dataset, fmt)])


async def _by_rows(engine, conditions: list) -> list[dict]:  # noqa: ANN001
    rows = export.interaction_rows(engine, conditions, False)
    text = b"".join([chunk async for chunk in export.encode(rows, "jsonl", export.INTERACTION_COLUMNS)])
    return [json.loads(line) for line in text.splitlines()]


async def test_lines_say_what_the_rows_say(engine) -> None:  # noqa: ANN001
    use_case, ids = await _seed(engine)
    conditions = [orm.Completion.use_case_id == use_case]
    lines = [json.loads(line) for line in (await _export(engine, conditions, "jsonl")).splitlines()]
    assert lines == await _by_rows(engine, conditions)
    assert [list(line) for line in lines] == [list(export.INTERACTION_COLUMNS)] * 3
    first, second, third = lines
    assert first["id"] == str(ids[0]) and first["created_at"] == int(datetime(2026, 3, 1, 12, 30, 15).timestamp())
    assert first["messages"][0]["content"] == 'Ça "marche"? \u2603\n\ttab'
    assert first["completion"] == 'Oui \u00e9 \\ "quoted"' and first["labels"] == {"split": "train", "lang": "fr"}
    assert sorted(first["feedback"].values()) == [0.30000000000000004, 1.0]
    assert second["session_id"] is None and second["model"] is None and second["completion"] is None
    assert second["messages"] == [] and second["labels"] == {} and second["feedback"] == {}
    assert third["messages"][0]["weight"] == 0.1 and list(third["feedback"].values()) == [0.0]
    # CSV keeps the row-by-row path: the same ids in the same order.
    csv_ids = [row.split(b",")[0].decode() for row in (await _export(engine, conditions, "csv")).splitlines()[1:]]
    assert csv_ids == [line["id"] for line in lines]


async def test_stored_json_sqlite_cannot_read_is_exported_as_the_rows_export_it(engine) -> None:  # noqa: ANN001
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL refuses NaN in a json column when it is written")
    use_case, ids = await _seed(engine)
    async with engine.begin() as conn:  # Python's encoder writes NaN, which SQLite's json() refuses
        await conn.execute(
            update(orm.Completion)
            .where(orm.Completion.id == ids[2])
            .values(messages=[{"role": "user", "content": "x", "score": math.nan}], labels={"k": "w"})
        )
    conditions = [orm.Completion.use_case_id == use_case]
    lines = [json.loads(line) for line in (await _export(engine, conditions, "jsonl")).splitlines()]
    assert lines == await _by_rows(engine, conditions)
    assert lines[2]["messages"] == [{"role": "user", "content": "x", "score": None}] and lines[2]["labels"] == {
        "k": "w"
    }
    assert list(lines[2]["feedback"].values()) == [0.0]
