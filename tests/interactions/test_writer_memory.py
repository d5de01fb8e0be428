"""What the ingest writer remembers between commits, so the usual traffic costs no extra statement: the
(use case, feedback key) links it wrote, and the model of the completions it committed (the feedback
roll-ups are per model). What it remembers must give the same rows as reading them."""

from __future__ import annotations

import asyncio
import gc
import uuid
from pathlib import Path

from sqlalchemy import select

from adaptive_engine.server.db.base import new_id
from adaptive_engine.server.db.models import Completion, Feedback, FeedbackHourly
from adaptive_engine.server.db.refs import RefCache
from adaptive_engine.server.domains.interactions.ingest import IngestWriter, RecentCompletions, Rows, completion_row
from adaptive_engine.server.domains.interactions.service import prompt_hash
from adaptive_engine.server.timestamps import utcnow
from tests.interactions.helpers import writer_database


def _interaction(use_case_id: uuid.UUID, metric_id: uuid.UUID, model_key: str) -> tuple[Rows, uuid.UUID]:
    rows = Rows()
    messages = [{"role": "user", "content": "hello"}]
    completion = rows.add(
        Completion,
        completion_row(
            use_case_id=use_case_id,
            messages=messages,
            completion="hi",
            prompt_hash=prompt_hash(messages),
            model_key=model_key,
            session_id=new_id(),
        ),
    )
    rows.add(Feedback, _feedback(use_case_id, metric_id, completion["id"], 1.0))
    rows.links.add((use_case_id, metric_id))
    return rows, completion["id"]


def _feedback(use_case_id: uuid.UUID, metric_id: uuid.UUID, completion_id: uuid.UUID, value: float) -> dict:
    return {
        "id": new_id(),
        "created_at": utcnow(),
        "completion_id": completion_id,
        "metric_id": metric_id,
        "use_case_id": use_case_id,
        "value": value,
        "reason": None,
        "details": None,
        "user_ref": None,
    }


def test_writer_memory_matches_the_database(database: str | None, tmp_path: Path) -> None:
    async def run() -> None:
        engine, maker, use_case, metric = await writer_database(database, tmp_path)
        link = (use_case.id, metric.id)
        writer = IngestWriter(maker, RefCache())
        await writer.start()
        try:
            rows, first = _interaction(use_case.id, metric.id, "model-a")
            await writer.write(rows)
            # Its own link write is remembered: the next feedback on that key needs no "link if missing".
            assert writer.known_links.missing({link}) == set()
            assert writer.recent_completions.get(first) == use_case.id
            assert writer.recent_completions.model_key(first) == "model-a"
            # Feedback on that completion, in a later commit: counted under the completion's model.
            later = Rows()
            later.add(Feedback, _feedback(use_case.id, metric.id, first, 0.0))
            await writer.write(later)
        finally:
            await writer.stop()
        # A new writer (a restarted process) remembers nothing: it reads the model of the completion.
        fresh = IngestWriter(maker, RefCache())
        await fresh.start()
        try:
            assert fresh.recent_completions.model_key(first) is None
            again = Rows()
            again.add(Feedback, _feedback(use_case.id, metric.id, first, 1.0))
            await fresh.write(again)
        finally:
            await fresh.stop()
        async with maker() as session:
            cells = (
                (await session.execute(select(FeedbackHourly).where(FeedbackHourly.use_case_id == use_case.id)))
                .scalars()
                .all()
            )
        assert [(c.model_key, c.count, c.total, c.min_value, c.max_value) for c in cells] == [
            ("model-a", 3, 2.0, 0.0, 1.0)
        ]
        await engine.dispose()

    asyncio.run(run())


def _tracked_within(root: object) -> int:
    """How many objects the garbage collector tracks among those ``root`` holds, itself included (classes
    and what they hold are not counted: they are shared)."""
    seen: set[int] = set()
    todo = [root]
    tracked = 0
    while todo:
        item = todo.pop()
        if id(item) in seen or isinstance(item, type):
            continue
        seen.add(id(item))
        tracked += gc.is_tracked(item)
        todo.extend(gc.get_referents(item))
    return tracked


def test_the_memory_of_completions_gives_the_collector_nothing_to_walk() -> None:
    """A full memory holds 100,000 completions: held as tracked objects (UUIDs, tuples of them), they were
    walked by every full garbage-collector pass, and their growth set off more passes under logging load.
    Entries are plain ints and strings instead: the collector tracks none of them, and they still answer with
    the same values."""
    memory = RecentCompletions(capacity=5_000)
    use_cases = [uuid.uuid4() for _ in range(3)]
    remembered = []
    for i in range(4_000):
        rows, completion_id = _interaction(use_cases[i % 3], uuid.uuid4(), f"model-{i % 5}")
        memory.add(rows)
        if i % 97 == 0:  # a sample to check the answers with
            remembered.append((completion_id, use_cases[i % 3], f"model-{i % 5}"))
    gc.collect()  # tuples of untracked values are untracked by a pass
    # Held as UUIDs and tuples of them, 4,000 completions were more than 8,000 tracked objects.
    assert _tracked_within(memory) < 20
    for completion_id, use_case_id, model_key in remembered:
        assert memory.get(completion_id) == use_case_id
        assert memory.model_key(completion_id) == model_key
    assert memory.get(uuid.uuid4()) is None and memory.model_key(uuid.uuid4()) is None
