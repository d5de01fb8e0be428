"""Online grading: a grader scores a sample of its use case's new live completions in the background."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import pytest
from sqlalchemy import select

from adaptive_engine.sdk.errors import ValidationError
from adaptive_engine.server.db.models import Completion, GradingResult, UseCase
from adaptive_engine.server.domains.graders.online import sampled
from adaptive_engine.server.timestamps import utcnow
from tests.ab_tests.support import in_db

CODE = """
def grade(messages, completion, metadata):
    if completion == "crash":
        raise ValueError("cannot grade this one")
    return len(completion)
"""


def add_completions(server, use_case: str, texts: list[str]) -> list[uuid.UUID]:
    async def add(session):
        uc = (await session.execute(select(UseCase).where(UseCase.key == use_case))).scalar_one()
        rows = []
        for text in texts:
            messages = [{"role": "user", "content": f"say {text}"}]
            row = Completion(
                use_case_id=uc.id,
                messages=messages,
                completion=text,
                source="LIVE",
                prompt_hash=hashlib.sha256(repr(messages).encode()).hexdigest(),
                created_at=utcnow(),
            )
            session.add(row)
            rows.append(row)
        await session.flush()
        return [r.id for r in rows]

    return in_db(server, add)


def run_once(server) -> int:
    service = server.app.state.online_grading
    return asyncio.run_coroutine_threadsafe(service.run_once(), service.loop).result(timeout=120)


def results_of(server, ids: list[uuid.UUID]) -> dict[uuid.UUID, GradingResult]:
    async def read(session):
        rows = await session.execute(select(GradingResult).where(GradingResult.completion_id.in_(ids)))
        return {r.completion_id: r for r in rows.scalars()}

    return in_db(server, read)


def test_online_grading_scores_new_live_traffic(server, client, use_case, unique) -> None:
    before = add_completions(server, use_case, ["old"])
    client.graders.create.custom(key="len", feedback_key=f"len-{unique}", code=CODE)
    grader = client.graders.set_online_grading(grader_key="len", rate=1.0)
    assert grader.online_sample_rate == 1.0
    ids = add_completions(server, use_case, ["abc", "crash", "hello"])
    run_once(server)
    found = results_of(server, before + ids)
    assert before[0] not in found  # traffic from before online grading was turned on is left alone
    assert found[ids[0]].score == 3.0 and found[ids[2]].score == 5.0
    assert found[ids[1]].score is None and "cannot grade" in found[ids[1]].error  # recorded, never fatal
    assert all(r.origin == "online" for r in found.values())
    feedback = feedback_of(server, ids)
    assert sorted(feedback.values()) == [3.0, 5.0]  # written under the grader's key; the failure writes none
    run_once(server)  # nothing new: nothing graded twice
    assert len(results_of(server, ids)) == 3
    client.graders.set_online_grading(grader_key="len", rate=0)
    later = add_completions(server, use_case, ["later"])
    run_once(server)
    assert results_of(server, later) == {}


def feedback_of(server, ids: list[uuid.UUID]) -> dict[uuid.UUID, float]:
    from adaptive_engine.server.db.models import Feedback

    async def read(session):
        rows = await session.execute(select(Feedback).where(Feedback.completion_id.in_(ids)))
        return {r.completion_id: r.value for r in rows.scalars()}

    return in_db(server, read)


def test_grade_with_completion_id_writes_feedback(server, client, use_case, unique) -> None:
    client.graders.create.custom(key="len", feedback_key=f"len-{unique}", code=CODE)
    [cid] = add_completions(server, use_case, ["four"])
    result = client.graders.grade(grader_key="len", messages=[], completion="four", completion_id=str(cid))
    assert result.score == 4.0
    assert feedback_of(server, [cid]) == {cid: 4.0}
    assert results_of(server, [cid])[cid].origin == "api"


def test_score_that_the_key_cannot_hold_is_recorded_as_error(server, client, use_case, chat_model, unique) -> None:
    # a bool feedback key (made by a judge grader) cannot hold 4.0
    client.graders.create.binary_judge(key="j", criteria="c", judge_model=chat_model, feedback_key=f"bool-{unique}")
    client.graders.create.custom(key="len", feedback_key=f"bool-{unique}", code=CODE)
    [cid] = add_completions(server, use_case, ["four"])
    client.graders.grade(grader_key="len", messages=[], completion="four", completion_id=str(cid))
    assert feedback_of(server, [cid]) == {}
    assert "bool key" in results_of(server, [cid])[cid].error


def test_online_grading_rate_is_validated(client, use_case, unique) -> None:
    client.graders.create.custom(key="len", feedback_key=f"len-{unique}", code=CODE)
    for rate in (-0.1, 1.5):
        with pytest.raises(ValidationError):
            client.graders.set_online_grading(grader_key="len", rate=rate)


def test_sampling_is_deterministic_and_near_the_rate() -> None:
    grader = uuid.uuid4()
    ids = [uuid.uuid4() for _ in range(4000)]
    picked = [i for i in ids if sampled(grader, i, 0.25)]
    assert 800 < len(picked) < 1200
    assert picked == [i for i in ids if sampled(grader, i, 0.25)]
