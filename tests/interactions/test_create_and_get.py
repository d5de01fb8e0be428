"""interactions.create / get, and the bad inputs that must change nothing."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from adaptive_engine import AsyncAdaptive
from adaptive_engine.sdk.errors import NotFoundError, ValidationError
from tests.interactions.helpers import msgs, rest, seed_ab_campaign, seed_models


@pytest.fixture
def use_case(client, unique: str) -> str:
    key = f"ix-{unique}"
    client.use_cases.create(key)
    client.set_default_use_case(key)
    client.feedback.register_key(f"ok-{unique}", kind="bool")
    client.feedback.register_key(f"score-{unique}", kind="scalar")
    return key


def test_create_and_get(client, server, use_case: str, unique: str) -> None:
    seed_models(server, f"gpt-{unique}")
    session_id, user = uuid.uuid4(), uuid.uuid4()
    messages = [{"role": "system", "content": "Be brief."}, *msgs()]
    out = client.interactions.create(
        messages=messages,
        completion="Paris.",
        model=f"gpt-{unique}",
        feedbacks=[
            {"feedback_key": f"ok-{unique}", "value": True, "details": "right"},
            {"feedback_key": f"score-{unique}", "value": 0.9},
        ],
        user=user,
        session_id=session_id,
        labels={"country": "fr", "channel": "web"},
        created_at="2024-02-21T09:51:03Z",
    )
    assert out.session_id == str(session_id) and len(out.feedback_ids) == 2
    got = client.interactions.get(out.completion_id)
    assert got.id == out.completion_id
    assert [(m.role, m.content) for m in got.chat_messages] == [(m["role"], m["content"]) for m in messages]
    assert got.completion == "Paris." and got.source == "OFFLINE"
    assert got.model.key == f"gpt-{unique}"
    assert {(lbl.key, lbl.value) for lbl in got.labels} == {("country", "fr"), ("channel", "web")}
    assert got.session_id == str(session_id) and got.user_id == str(user)
    assert got.created_at == 1708509063
    assert got.metadata.system == "Be brief."
    assert sorted((f.metric.key, f.value) for f in got.direct_feedbacks) == [
        (f"ok-{unique}", 1.0),
        (f"score-{unique}", 0.9),
    ]
    assert {f.id for f in got.direct_feedbacks} == set(out.feedback_ids)
    # A session id is made up when none is given.
    plain = client.interactions.create(messages=msgs(), completion="Paris")
    assert uuid.UUID(plain.session_id) and plain.feedback_ids == []


def test_get_unknown_or_other_use_case(client, use_case: str, unique: str) -> None:
    with pytest.raises(NotFoundError):
        client.interactions.get(str(uuid.uuid4()))
    out = client.interactions.create(messages=msgs(), completion="Paris.")
    client.use_cases.create(f"other-{unique}")
    with pytest.raises(NotFoundError):
        client.interactions.get(out.completion_id, use_case=f"other-{unique}")


def test_bad_input_is_refused_and_nothing_is_written(client, server, use_case: str, unique: str) -> None:
    before = client.interactions.list().total_count
    with pytest.raises(ValidationError, match="content"):
        client.interactions.create(messages=[{"role": "user", "content": ""}], completion="x")
    with pytest.raises(ValidationError):
        client.interactions.create(messages=[], completion="x")
    with pytest.raises(NotFoundError):
        client.interactions.create(messages=msgs(), completion="x", use_case=f"nope-{unique}")
    with pytest.raises(NotFoundError):
        client.interactions.create(messages=msgs(), completion="x", model=f"nope-{unique}")
    with pytest.raises(NotFoundError):
        client.interactions.create(
            messages=msgs(), completion="x", feedbacks=[{"feedback_key": f"nope-{unique}", "value": 1}]
        )
    with pytest.raises(ValidationError):
        client.interactions.create(
            messages=msgs(), completion="x", feedbacks=[{"feedback_key": f"ok-{unique}", "value": 0.5}]
        )
    with pytest.raises(ValidationError):
        client.interactions.create(
            messages=msgs(), completion="x", feedbacks=[{"feedback_key": f"score-{unique}", "value": "high"}]
        )
    with pytest.raises(ValidationError):
        client.interactions.create(messages=msgs(), completion="x", created_at="yesterday")
    with pytest.raises(NotFoundError):
        client.interactions.create(messages=msgs(), completion="x", ab_campaign=f"nope-{unique}")
    client.use_cases.create(f"elsewhere-{unique}")
    seed_ab_campaign(server, f"elsewhere-{unique}", f"ok-{unique}", f"camp-else-{unique}")
    with pytest.raises(ValidationError, match="another use case"):
        client.interactions.create(messages=msgs(), completion="x", ab_campaign=f"camp-else-{unique}")
    missing_content = rest(
        server, "/interactions", {"use_case": use_case, "completion": "x", "messages": [{"role": "user"}]}
    )
    assert missing_content.status_code == 400 and "content" in missing_content.json()["error"]["message"]
    assert client.interactions.list().total_count == before


def test_batch_is_all_or_nothing_and_names_the_bad_row(client, server, use_case: str, unique: str) -> None:
    good = {"use_case": use_case, "completion": "Paris.", "messages": msgs(), "labels": {"batch": unique}}
    bad_value = {**good, "feedbacks": [{"metric": f"ok-{unique}", "value": 0.5}]}
    response = rest(server, "/interactions", [good, good, bad_value, good])
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "INVALID_INPUT" and "interactions[2].feedbacks[0]" in error["message"]
    missing_key = rest(
        server, "/interactions", [good, {**good, "feedbacks": [{"metric": f"nope-{unique}", "value": 1}]}]
    )
    assert missing_key.status_code == 404 and "interactions[1]" in missing_key.json()["error"]["message"]
    no_content = rest(server, "/interactions", [good, {**good, "messages": [{"role": "user", "content": None}]}])
    assert no_content.status_code == 400 and "interactions[1].messages[0]" in no_content.json()["error"]["message"]
    shape = rest(server, "/interactions", [good, {"use_case": use_case}])
    assert shape.status_code == 400 and "1.completion" in shape.json()["error"]["message"]
    assert client.interactions.list(filters={"labels": [{"key": "batch", "value": [unique]}]}).total_count == 0
    ok = rest(server, "/interactions", [good, {**good, "feedbacks": [{"metric": f"ok-{unique}", "value": 1}]}])
    assert ok.status_code == 201 and len(ok.json()) == 2 and len(ok.json()[1]["feedback_ids"]) == 1
    assert client.interactions.list(filters={"labels": [{"key": "batch", "value": [unique]}]}).total_count == 2
    assert rest(server, "/interactions", []).status_code == 400


def test_async_client(server, use_case: str, unique: str) -> None:
    async def run() -> None:
        async with AsyncAdaptive(server.base_url, api_key=server.api_key) as client:
            client.set_default_use_case(use_case)
            outs = await asyncio.gather(
                *[
                    client.interactions.create(messages=msgs(), completion=str(i), labels={"async": unique})
                    for i in range(20)
                ]
            )
            await client.feedback.log_metric(1, outs[0].completion_id, f"ok-{unique}")
            page = await client.interactions.list(filters={"labels": [{"key": "async"}]}, page={"first": 50})
            assert page.total_count == 20
            assert {n.id for n in page.nodes} == {o.completion_id for o in outs}
            got = await client.interactions.get(outs[0].completion_id)
            assert got.direct_feedbacks[0].value == 1.0

    asyncio.run(run())
