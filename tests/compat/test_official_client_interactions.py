"""The official adaptive-sdk client's interactions.* and feedback.* against our server."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.interactions.helpers import rest, seed_models

adaptive_sdk = pytest.importorskip("adaptive_sdk")


@pytest.fixture
def official(server, unique: str):
    client = adaptive_sdk.Adaptive(base_url=server.base_url, api_key=server.api_key)
    client.use_cases.create(key=f"oi-{unique}")
    client.set_default_use_case(f"oi-{unique}")
    return client


def test_feedback_keys(official, unique: str) -> None:
    created = official.feedback.register_key(
        f"acc-{unique}", kind="bool", scoring_type="lower_is_better", description="d"
    )
    assert (
        created.key == f"acc-{unique}"
        and created.kind.value == "BOOL"
        and created.scoring_type.value == "LOWER_IS_BETTER"
    )
    assert created.has_direct_feedbacks is False
    assert official.feedback.get_key(f"acc-{unique}").id == created.id
    listed = {k.key: k for k in official.feedback.list_keys()}
    assert listed[f"acc-{unique}"].use_cases == []
    linked = official.feedback.link(f"acc-{unique}")
    assert linked.key == f"acc-{unique}"
    assert [u.key for u in {k.key: k for k in official.feedback.list_keys()}[f"acc-{unique}"].use_cases] == [
        f"oi-{unique}"
    ]
    assert official.feedback.unlink(f"acc-{unique}") == f"acc-{unique}"


def test_interactions_and_feedback(official, server, unique: str) -> None:
    seed_models(server, f"om-a-{unique}", f"om-b-{unique}")
    official.feedback.register_key(f"ok-{unique}", kind="bool")
    official.feedback.register_key(f"score-{unique}", kind="scalar")
    session_id = uuid.uuid4()
    first = official.interactions.create(
        messages=[{"role": "user", "content": "Capital of France?"}],
        completion="Paris.",
        model=f"om-a-{unique}",
        feedbacks=[{"feedback_key": f"ok-{unique}", "value": True, "details": "yes"}],
        user=uuid.uuid4(),
        session_id=session_id,
        labels={"k": "v"},
        created_at="2024-05-01T00:00:00Z",
    )
    assert first.session_id == session_id and len(first.feedback_ids) == 1
    second = official.interactions.create(
        messages=[{"role": "user", "content": "Capital of France?"}], completion="Lyon.", model=f"om-b-{unique}"
    )
    fb = official.feedback.log_metric(0.75, second.completion_id, f"score-{unique}", user=uuid.uuid4(), details="meh")
    assert isinstance(fb.feedback_id, uuid.UUID)
    cmp = official.feedback.log_preference(f"ok-{unique}", first.completion_id, second.completion_id)
    text = official.feedback.log_preference(
        f"ok-{unique}",
        {"model": f"om-a-{unique}", "text": "4"},
        {"model": f"om-b-{unique}", "text": "5"},
        messages=[{"role": "user", "content": "2+2?"}],
    )
    # log_preference(tied=...) fails inside the client (it puts an Enum into its JSON body): the wire
    # body it means to send is posted as is.
    tied = rest(
        server,
        "/comparison",
        {
            "metric": f"ok-{unique}",
            "preferred_completion": str(first.completion_id),
            "other_completion": str(second.completion_id),
            "tied": "good",
            "use_case": f"oi-{unique}",
        },
    )
    assert tied.status_code == 201
    assert isinstance(cmp.comparison_id, uuid.UUID) and isinstance(text.comparison_id, uuid.UUID)

    got = official.interactions.get(str(first.completion_id))
    assert got.completion == "Paris." and got.model.key == f"om-a-{unique}"
    assert got.direct_feedbacks[0].metric.key == f"ok-{unique}" and got.direct_feedbacks[0].value == 1.0
    assert got.comparison_feedbacks[0].prefered_completion.id == str(first.completion_id)
    assert got.labels[0].key == "k" and got.created_at == 1714521600

    listed = official.interactions.list()
    assert listed.total_count == 4 and len(listed.nodes) == 4
    oldest = official.interactions.list(order=[{"field": "created_at", "order": "ASC"}], page={"first": 1})
    assert oldest.nodes[0].id == str(first.completion_id) and oldest.page_info.has_next_page
    grouped = official.interactions.list(group_by="model")
    counts = {g.key: g.count for g in grouped.nodes}
    assert counts == {f"om-a-{unique}": 2, f"om-b-{unique}": 2}
    stats = {g.key: g.direct_feedbacks_stats for g in grouped.nodes}
    assert stats[f"om-b-{unique}"][0].average == 0.75
    assert official.interactions.list(group_by="prompt").total_count == 2
    assert len(official.interactions.get(str(first.completion_id)).comparison_feedbacks) == 2


def test_filters_through_the_generated_operation(official, unique: str) -> None:
    """interactions.list(filters=...) never sends its filters (client bug): call the operation directly."""
    from adaptive_sdk.graphql_client import CursorPageInput, ListCompletionsFilterInput

    official.interactions.create(messages=[{"role": "user", "content": "a"}], completion="x", labels={"keep": "1"})
    official.interactions.create(messages=[{"role": "user", "content": "b"}], completion="y")
    result = official._gql_client.list_interactions(
        filter=ListCompletionsFilterInput.model_validate(
            {"useCase": f"oi-{unique}", "labels": [{"key": "keep", "value": ["1"]}]}
        ),
        page=CursorPageInput(),
    ).completions
    assert result.total_count == 1 and result.nodes[0].completion == "x"
    advanced = official._gql_client.list_interactions(
        filter=ListCompletionsFilterInput.model_validate(
            {"useCase": f"oi-{unique}", "advancedFilter": {"not": {"completion": {"eq": "x"}}}}
        ),
        page=CursorPageInput(first=10),
    ).completions
    assert [n.completion for n in advanced.nodes] == ["y"]


def test_async_official_client(server, unique: str) -> None:
    async def run() -> None:
        client = adaptive_sdk.AsyncAdaptive(base_url=server.base_url, api_key=server.api_key)
        await client.use_cases.create(key=f"oa-{unique}")
        client.set_default_use_case(f"oa-{unique}")
        await client.feedback.register_key(f"ok-{unique}", kind="bool")
        out = await client.interactions.create(messages=[{"role": "user", "content": "hi"}], completion="hello")
        await client.feedback.log_metric(False, out.completion_id, f"ok-{unique}")
        got = await client.interactions.get(str(out.completion_id))
        assert got.direct_feedbacks[0].value == 0.0
        assert (await client.interactions.list()).total_count == 1

    asyncio.run(run())


def test_bad_input_errors(official, unique: str) -> None:
    official.feedback.register_key(f"ok-{unique}", kind="bool")
    out = official.interactions.create(messages=[{"role": "user", "content": "hi"}], completion="hello")
    with pytest.raises(Exception, match="bool key"):
        official.feedback.log_metric(0.5, out.completion_id, f"ok-{unique}")
    with pytest.raises(Exception, match="not found"):
        official.feedback.log_metric(1, uuid.uuid4(), f"ok-{unique}")
    with pytest.raises(Exception, match="same one twice"):
        official.feedback.log_preference(f"ok-{unique}", out.completion_id, out.completion_id)
    assert official.interactions.get(str(out.completion_id)).direct_feedbacks == []
