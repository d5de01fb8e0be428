"""External-endpoint graders against real reward servers (the official client's RewardServer class)."""

from __future__ import annotations

import pytest

from adaptive_engine.sdk.errors import ConflictError, NotFoundError, ServerError, ValidationError
from adaptive_engine.server.domains.graders import remote_envs, service


@pytest.fixture
def quick_timeouts(server, monkeypatch):
    monkeypatch.setattr(service, "PROBE_TIMEOUT_S", 1.0)
    monkeypatch.setattr(remote_envs, "PROBE_TIMEOUT_S", 1.0)
    grading = server.app.state.grading
    old = grading.remote_timeout_s
    grading.remote_timeout_s = 1.0
    yield
    grading.remote_timeout_s = old


def test_create_get_list_external_endpoint(client, use_case, word_server, unique) -> None:
    grader = client.graders.create.external_endpoint(key="words", url=word_server.url, feedback_key=f"fk-{unique}")
    assert grader.grader_type == "REMOTE" and grader.key == "words" and not grader.locked
    cfg = grader.grader_config
    assert cfg.url == word_server.url and cfg.version == "1.2" and cfg.description == "checks an expected word"
    assert grader.metric.key == f"fk-{unique}" and grader.metric.kind == "SCALAR"
    assert grader.updated_at >= grader.created_at > 0
    assert grader.use_case.key == use_case
    got = client.graders.get(grader_key="words")
    assert got.id == grader.id
    assert client.graders.get(grader_key=grader.id).key == "words"
    assert [g.key for g in client.graders.list()] == ["words"]
    # the feedback key was created and linked to the use case
    assert f"fk-{unique}" in [m.key for m in client.use_cases.get().metrics]


def test_get_missing_grader_is_an_error(client, use_case) -> None:
    with pytest.raises(NotFoundError):
        client.graders.get(grader_key="nope")


def test_grade_with_remote_grader(client, use_case, word_server, unique) -> None:
    client.graders.create.external_endpoint(key="words", url=word_server.url, feedback_key=f"fk-{unique}")
    hit = client.graders.grade(
        grader_key="words",
        messages=[{"role": "user", "content": "Capital of France?"}],
        completion="It is Paris.",
        metadata={"expected": "paris"},
    )
    assert hit.score == 1.0 and hit.error is None and "found" in hit.reasoning
    results = client.graders.grade_batch(
        grader_key="words",
        samples=[
            {"messages": [{"role": "user", "content": "q"}], "completion": "London", "metadata": {"expected": "paris"}},
            {"messages": [{"role": "user", "content": "q"}], "completion": "Paris", "metadata": {"wrong_field": 1}},
            {"messages": [{"role": "user", "content": "q"}], "completion": "Paris", "metadata": {"expected": "Paris"}},
        ],
    )
    assert results[0].score == 0.0 and results[0].error is None
    assert results[1].score is None and "schema" in results[1].error  # one bad sample, recorded alone
    assert results[2].score == 1.0


def test_test_external_endpoint(client, word_server, quick_timeouts, broken_server) -> None:
    online = client.graders.test_external_endpoint(word_server.url)
    assert online.name == "word-checker" and online.version == "1.2"
    from tests.support import free_port

    offline = client.graders.test_external_endpoint(f"http://127.0.0.1:{free_port()}")
    assert offline.error and "could not reach" in offline.error
    garbage = client.graders.test_external_endpoint(broken_server.url + "/garbage")
    assert "not JSON" in garbage.error
    slow = client.graders.test_external_endpoint(broken_server.url + "/slow")
    assert "did not answer" in slow.error
    huge = client.graders.test_external_endpoint(broken_server.url + "/huge")
    assert "larger than" in huge.error
    for bad in ("ftp://example.com", "not a url", "", "http://"):
        with pytest.raises(ValidationError):
            client.graders.test_external_endpoint(bad)


def test_bad_endpoints_are_refused_at_creation(client, use_case, quick_timeouts, broken_server, unique) -> None:
    with pytest.raises(ValidationError):
        client.graders.create.external_endpoint(key="bad", url="file:///etc/passwd", feedback_key=f"fk-{unique}")
    with pytest.raises(ServerError):
        client.graders.create.external_endpoint(
            key="bad", url=broken_server.url + "/garbage", feedback_key=f"fk-{unique}"
        )
    with pytest.raises(ServerError):
        client.graders.create.external_endpoint(key="bad", url=broken_server.url + "/slow", feedback_key=f"fk-{unique}")
    assert client.graders.list() == []


def test_remote_failures_are_per_sample_errors(
    client,
    use_case,
    quick_timeouts,
    broken_server,
    length_server,
    unique,
) -> None:
    client.graders.create.external_endpoint(
        key="bad-reward", url=broken_server.url + "/badreward", feedback_key=f"fk-{unique}"
    )
    [result] = client.graders.grade_batch(
        grader_key="bad-reward", samples=[{"messages": [{"role": "user", "content": "q"}], "completion": "a"}]
    )
    assert result.score is None and "numeric 'reward'" in result.error
    # The server goes away after creation: every sample records why, the call itself succeeds.
    client.graders.create.external_endpoint(key="len", url=length_server.url, feedback_key=f"fk-{unique}")
    assert client.graders.grade(grader_key="len", messages=[], completion="abcd").score == 4.0


def test_lock_and_delete_rules(client, use_case, word_server, unique) -> None:
    client.graders.create.external_endpoint(key="words", url=word_server.url, feedback_key=f"fk-{unique}")
    locked = client.graders.lock(grader_key="words", locked=True)
    assert locked.locked
    with pytest.raises(ConflictError, match="locked"):
        client.graders.delete(grader_key="words")
    assert client.graders.get(grader_key="words").locked
    assert not client.graders.lock(grader_key="words", locked=False).locked
    assert client.graders.delete(grader_key="words") is True
    with pytest.raises(NotFoundError):
        client.graders.get(grader_key="words")
    with pytest.raises(NotFoundError):
        client.graders.delete(grader_key="words")


def test_duplicate_and_malformed_keys(client, use_case, word_server, unique) -> None:
    client.graders.create.external_endpoint(key="words", url=word_server.url, feedback_key=f"fk-{unique}")
    with pytest.raises(ConflictError):
        client.graders.create.external_endpoint(key="words", url=word_server.url, feedback_key=f"fk-{unique}")
    with pytest.raises(ValidationError):
        client.graders.create.external_endpoint(key="bad key!", url=word_server.url, feedback_key=f"fk-{unique}")
    with pytest.raises(NotFoundError):
        client.graders.create.external_endpoint(key="x", url=word_server.url, feedback_key="f", use_case="no-such-uc")
    assert [g.key for g in client.graders.list()] == ["words"]


async def test_websocket_and_batch_protocol(length_server, word_server) -> None:
    from adaptive_engine.server.domains.graders.remote import RewardServerClient
    from adaptive_engine.server.outbound import OutboundGuard

    async with RewardServerClient(length_server.url, OutboundGuard()) as rc:
        turns = [[{"role": "user", "content": "q"}, {"role": "assistant", "content": "x" * n}] for n in range(1, 40)]
        over_ws = await rc.ws_score([(t, None) for t in turns])
        assert [r.reward for r in over_ws] == [float(n) for n in range(1, 40)]
        batched = await rc.batch_score([(t, None) for t in turns[:3]])
        assert [r.reward for r in batched] == [1.0, 2.0, 3.0]
    async with RewardServerClient(word_server.url, OutboundGuard()) as rc:
        schema = await rc.metadata_schema()
        assert "expected" in schema["properties"]
        [bad, good] = await rc.ws_score(
            [
                ([{"role": "assistant", "content": "hi"}], {}),
                ([{"role": "assistant", "content": "hi"}], {"expected": "hi"}),
            ]
        )
        assert bad.error and "schema" in bad.error and good.reward == 1.0


def test_locked_grader_cannot_change_and_running_job_blocks_delete(
    server, client, use_case, word_server, unique
) -> None:
    from sqlalchemy import select

    from adaptive_engine.server.db.models import Job, UseCase
    from tests.ab_tests.support import in_db

    client.graders.create.external_endpoint(key="words", url=word_server.url, feedback_key=f"fk-{unique}")
    client.graders.lock(grader_key="words", locked=True)
    with pytest.raises(ConflictError, match="locked"):
        client.graders.set_online_grading(grader_key="words", rate=0.5)
    client.graders.lock(grader_key="words", locked=False)

    async def add_job(session):
        uc = (await session.execute(select(UseCase).where(UseCase.key == use_case))).scalar_one()
        job = Job(
            name="eval-run",
            use_case_id=uc.id,
            recipe_hash="0" * 64,
            recipe_path="eval.py",
            status="RUNNING",
            args={"graders": ["words"]},
        )
        session.add(job)
        await session.flush()
        return job.id

    job_id = in_db(server, add_job)
    with pytest.raises(ConflictError, match="eval-run"):
        client.graders.delete(grader_key="words")

    async def finish(session):
        (await session.get(Job, job_id)).status = "COMPLETED"

    in_db(server, finish)
    assert client.graders.delete(grader_key="words")
