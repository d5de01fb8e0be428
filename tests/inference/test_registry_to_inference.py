"""From the registry to inference on both databases, with external models on a fake provider: register,
attach, chat (plain and streamed), store, A/B routing, detach."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from adaptive_engine.sdk.errors import APIError, NotFoundError
from adaptive_engine.server.db import models as orm
from tests.ab_tests.support import in_db
from tests.inference.fixtures import API_KEY

pytestmark = pytest.mark.postgres


def completion(server, completion_id: str) -> orm.Completion | None:
    async def work(session):
        return await session.get(orm.Completion, uuid.UUID(completion_id))

    return in_db(server, work)


def test_external_model_serves_and_stores(server, client, upstream, unique):
    client.use_cases.create(key=f"ext-{unique}")
    client.set_default_use_case(f"ext-{unique}")
    model = client.models.add_external(
        name=f"Fake {unique}",
        key=f"fake-{unique}",
        external_model_id="gpt-test",
        api_key=API_KEY,
        provider="open_ai",
        endpoint=upstream.base_url,
    )
    with pytest.raises(NotFoundError, match="not attached"):
        client.chat.create(messages=[{"role": "user", "content": "hi"}], model=model.key)
    client.models.attach(model.key, wait=True, make_default=True)
    answer = client.chat.create(messages=[{"role": "user", "content": "hello"}], labels={"k": "v"})
    assert answer.choices[0].message.content == "echo: hello"
    row = completion(server, answer.choices[0].completion_id)
    assert row is not None and row.completion == "echo: hello" and row.model_key == model.key
    assert row.labels == {"k": "v"} and (row.prompt_tokens, row.completion_tokens) == (5, 3)
    chunks = list(
        client.chat.create(messages=[{"role": "user", "content": "a b c"}], stream=True, stream_include_usage=True)
    )
    assert "".join(c.choices[0].delta.content for c in chunks if c.choices) == "echo: a b c"
    assert chunks[-1].usage.completion_tokens == 4
    assert completion(server, chunks[0].choices[0].completion_id).completion == "echo: a b c"
    client.models.update(model.key, desired_online=False)
    with pytest.raises(APIError, match="not deployed"):
        client.chat.create(messages=[{"role": "user", "content": "hi"}])


def test_ab_campaign_routes_and_is_recorded(server, client, upstream, unique):
    use_case = f"abx-{unique}"
    client.use_cases.create(key=use_case)
    client.set_default_use_case(use_case)
    keys = []
    for i in range(2):
        m = client.models.add_external(
            name=f"Arm {i} {unique}",
            key=f"arm{i}-{unique}",
            external_model_id="gpt-test",
            api_key=API_KEY,
            provider="open_ai",
            endpoint=upstream.base_url,
        )
        client.models.attach(m.key, wait=True, make_default=i == 0)
        keys.append(m.key)
    client.feedback.register_key(key=f"good-{unique}", kind="bool")
    client.feedback.link(f"good-{unique}")
    campaign = client.ab_tests.create(ab_test_key=f"t-{unique}", feedback_key=f"good-{unique}", models=keys)
    answer = client.chat.create(messages=[{"role": "user", "content": "route me"}], ab_campaign=campaign.key)
    row = completion(server, answer.choices[0].completion_id)
    assert row.ab_campaign_id == uuid.UUID(campaign.id)
    assert row.model_key in keys and answer.choices[0].model == row.model_key

    async def count(session):
        return len(
            (
                await session.execute(
                    select(orm.Completion.id).where(orm.Completion.ab_campaign_id == uuid.UUID(campaign.id))
                )
            ).all()
        )

    assert in_db(server, count) == 1


def test_local_model_that_fails_to_load_ends_in_error(server, client, tmp_path, unique):
    folder = tmp_path / f"broken-{unique}"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "no-such-architecture"}')
    model = client.models.add_local(path=str(folder), name=f"Broken {unique}", key=f"broken-{unique}")
    use_case = f"loc-{unique}"
    client.use_cases.create(key=use_case)
    with pytest.raises(APIError, match="failed to load"):
        client.models.attach(model.key, wait=True, use_case=use_case)
    got = client.models.get(model.key)
    assert got.online == "ERROR" and "could not load the model" in got.error
    with pytest.raises(APIError, match=f"model '{model.key}' of use case '{use_case}' is not online \\(status ERROR"):
        client.chat.create(messages=[{"role": "user", "content": "hi"}], model=model.key, use_case=use_case)
