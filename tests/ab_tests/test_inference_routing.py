"""A/B campaigns on the real inference path: chat requests routed into the campaign (split, sticky
sessions, forcing), completions recorded with campaign and model, feedback on them deciding the test,
and the promoted winner serving the default traffic afterwards. Models are external ones served by the
fake OpenAI-compatible provider that the inference fixtures start on 127.0.0.1."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from adaptive_engine.sdk.errors import NotFoundError, ValidationError
from adaptive_engine.server.db import models as orm
from tests.ab_tests.support import MIN_OBS, evaluate, in_db
from tests.inference.fixtures import API_KEY, until_sync

QUESTION = [{"role": "user", "content": "Say hello"}]


def setup_external(server, client, upstream, unique: str):
    """A use case with three online external chat models (the first is the default) and a bool key."""
    use_case = client.use_cases.create(key=f"abi-{unique}", name="A/B inference")

    async def work(session):
        keys = []
        for i in range(3):
            model = orm.Model(
                key=f"ext{i}-{unique}",
                name=f"External {i}",
                kind="chat",
                provider="open_ai",
                is_external=True,
                source={"external_model_id": "gpt-test", "endpoint": upstream.base_url},
                secret=API_KEY,
                status="ONLINE",
            )
            session.add(model)
            await session.flush()
            session.add(orm.ModelService(use_case_id=uuid.UUID(use_case.id), model_id=model.id, is_default=i == 0))
            keys.append(model.key)
        metric = orm.Metric(key=f"thumb-{unique}", name="thumb", kind="BOOL")
        session.add(metric)
        await session.flush()
        session.add(orm.UseCaseMetric(use_case_id=uuid.UUID(use_case.id), metric_id=metric.id))
        return keys, metric.key

    keys, metric = in_db(server, work)
    client.set_default_use_case(use_case.key)
    return use_case.key, keys, metric


def completion_rows(server, completion_ids: list[str]) -> list[orm.Completion]:
    async def work(session):
        return [await session.get(orm.Completion, uuid.UUID(c)) for c in completion_ids]

    return in_db(server, work)


def completion_row(server, completion_id: str) -> orm.Completion:
    return completion_rows(server, [completion_id])[0]


def campaign_id(server, key: str) -> uuid.UUID:
    async def work(session):
        return (await session.execute(select(orm.AbCampaign.id).where(orm.AbCampaign.key == key))).scalar_one()

    return in_db(server, work)


def test_chat_traffic_runs_the_campaign_end_to_end(ab_server, ab_client, upstream, unique: str) -> None:
    use_case, models, metric = setup_external(ab_server, ab_client, upstream, unique)
    key = f"chat-{unique}"
    ab_client.ab_tests.create(key, metric, models[1:], traffic_split=1.0, auto_deploy=True)
    cid = campaign_id(ab_server, key)

    # default traffic goes to the campaign's models, sticky per session, recorded with campaign and model
    served: dict[str, list[str]] = {m: [] for m in models[1:]}
    for i in range(2 * (MIN_OBS + 10)):
        session_id = uuid.UUID(int=i + 1)
        answer = ab_client.chat.create(messages=QUESTION, session_id=session_id, max_tokens=8)
        choice = answer.choices[0]
        assert choice.model in served
        if i % 6 == 0:
            again = ab_client.chat.create(messages=QUESTION, session_id=session_id, max_tokens=8)
            assert again.choices[0].model == choice.model
        served[choice.model].append(choice.completion_id)
    assert all(served.values())
    for model, ids in served.items():
        for row in completion_rows(ab_server, ids):
            assert (row.ab_campaign_id, row.model_key, row.source) == (cid, model, "LIVE")

    # feedback: the second model of the campaign is clearly better
    for model, ids in served.items():
        for j, completion_id in enumerate(ids):
            good = j % 10 < (9 if model == models[2] else 2)
            ab_client.feedback.log_metric(value=good, completion_id=completion_id, feedback_key=metric)
    evaluate(ab_server)
    got = ab_client.ab_tests.get(key)
    assert got.status == "DONE" and got.winner.key == models[2]
    assert sum(v.assignments for v in got.report.variants) == 2 * (MIN_OBS + 10)

    # the winner is the default model now, and the ended campaign takes no more traffic
    # (a replica sees the end within the router's cache delay: wait for it, bounded)
    def untagged_on_winner() -> bool:
        answer = ab_client.chat.create(messages=QUESTION, session_id=uuid.uuid4(), max_tokens=8)
        row = completion_row(ab_server, answer.choices[0].completion_id)
        return answer.choices[0].model == models[2] and row.ab_campaign_id is None

    until_sync(untagged_on_winner)
    assert [m.key for m in ab_client.use_cases.get(use_case).model_services if m.is_default] == [models[2]]


def test_forcing_and_explicit_models_on_chat(ab_server, ab_client, upstream, unique: str) -> None:
    use_case, models, metric = setup_external(ab_server, ab_client, upstream, unique)
    key = f"force-{unique}"
    ab_client.ab_tests.create(key, metric, models[1:], traffic_split=0.001)
    cid = campaign_id(ab_server, key)
    # forced into the campaign whatever the split
    for i in range(6):
        answer = ab_client.chat.create(messages=QUESTION, ab_campaign=key, session_id=uuid.UUID(int=100 + i))
        assert answer.choices[0].model in models[1:]
        assert completion_row(ab_server, answer.choices[0].completion_id).ab_campaign_id == cid
    # an explicit model that is an arm counts for it when the campaign is named, not otherwise
    named = ab_client.chat.create(messages=QUESTION, model=models[1], ab_campaign=key)
    assert named.choices[0].model == models[1]
    assert completion_row(ab_server, named.choices[0].completion_id).ab_campaign_id == cid
    plain = ab_client.chat.create(messages=QUESTION, model=models[1])
    assert completion_row(ab_server, plain.choices[0].completion_id).ab_campaign_id is None
    # bad input: a model outside the campaign, an unknown campaign
    with pytest.raises(ValidationError, match="not one of the models"):
        ab_client.chat.create(messages=QUESTION, model=models[0], ab_campaign=key)
    with pytest.raises(NotFoundError, match="A/B test"):
        ab_client.chat.create(messages=QUESTION, ab_campaign="no-such-test")
