"""interactions.list: every filter, ordering, cursor pagination while rows arrive, group_by."""

from __future__ import annotations

import uuid

import pytest

from adaptive_engine.sdk.errors import NotFoundError, ValidationError
from tests.interactions.helpers import graphql, msgs, seed_ab_campaign, seed_models


@pytest.fixture
def traffic(client, server, unique: str) -> dict:
    """Six interactions over two models, two sessions, labels, feedback and a comparison."""
    uc, a, b = f"ls-{unique}", f"ma-{unique}", f"mb-{unique}"
    client.use_cases.create(uc)
    client.set_default_use_case(uc)
    seed_models(server, a, b)
    client.feedback.register_key(f"score-{unique}", kind="scalar")
    client.feedback.register_key(f"pref-{unique}", kind="bool")
    s1, s2, user = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    campaign = seed_ab_campaign(server, uc, f"score-{unique}", f"camp-{unique}")
    spec = [  # model, prompt, session, labels, score, day
        (a, "p1", s1, {"env": "prod"}, 0.9, "2024-01-01"),
        (a, "p1", s1, {"env": "dev"}, 0.1, "2024-01-02"),
        (a, "p2", s2, {"env": "prod"}, None, "2024-01-03"),
        (b, "p1", s2, {}, 0.5, "2024-01-04"),
        (b, "p2", s2, {"env": "prod", "team": "x"}, 0.7, "2024-01-05"),
        (b, "p2", s1, {}, None, "2024-01-06"),
    ]
    ids = []
    for i, (model, prompt, session, labels, score, day) in enumerate(spec):
        out = client.interactions.create(
            messages=msgs(f"prompt {prompt}"),
            completion=f"answer {i}",
            model=model,
            session_id=session,
            labels=labels,
            created_at=f"{day}T12:00:00Z",
            user=user if i == 0 else None,
            ab_campaign=(campaign if i == 4 else f"camp-{unique}") if i in (4, 5) else None,
            feedbacks=[{"feedback_key": f"score-{unique}", "value": score}] if score is not None else None,
        )
        ids.append(out.completion_id)
    client.feedback.log_preference(f"pref-{unique}", ids[0], ids[3])
    return {
        "uc": uc,
        "a": a,
        "b": b,
        "ids": ids,
        "s1": s1,
        "s2": s2,
        "user": user,
        "campaign": campaign,
        "unique": unique,
    }


def _ids(page) -> list[str]:
    return [n.id for n in page.nodes]


def test_filters(client, traffic: dict) -> None:
    ids, u = traffic["ids"], traffic["unique"]
    every = client.interactions.list()
    assert every.total_count == 6 and _ids(every) == ids[::-1]
    assert _ids(client.interactions.list(filters={"models": [traffic["b"]]})) == ids[5:2:-1]
    assert set(_ids(client.interactions.list(filters={"session_id": traffic["s1"]}))) == {ids[0], ids[1], ids[5]}
    assert _ids(client.interactions.list(filters={"user_id": traffic["user"]})) == [ids[0]]
    assert _ids(client.interactions.list(filters={"completion_id": ids[2]})) == [ids[2]]
    window = {"from_": "2024-01-02T00:00:00Z", "to": 1704456000000}  # ms epoch: 2024-01-05T12:00:00Z
    assert _ids(client.interactions.list(filters={"timerange": window})) == ids[4:0:-1]
    assert set(_ids(client.interactions.list(filters={"labels": [{"key": "env", "value": ["prod"]}]}))) == {
        ids[0],
        ids[2],
        ids[4],
    }
    assert set(_ids(client.interactions.list(filters={"labels": [{"key": "env"}]}))) == {ids[0], ids[1], ids[2], ids[4]}
    assert _ids(client.interactions.list(filters={"labels": [{"key": "env", "value": ["prod"]}, {"key": "team"}]})) == [
        ids[4]
    ]
    assert set(_ids(client.interactions.list(filters={"ab_campaign": traffic["campaign"]}))) == {ids[4], ids[5]}
    assert set(_ids(client.interactions.list(filters={"ab_campaign": f"camp-{u}"}))) == {ids[4], ids[5]}
    assert client.interactions.list(filters={"source": ["LIVE"]}).total_count == 0
    assert client.interactions.list(filters={"source": ["OFFLINE"]}).total_count == 6
    assert set(_ids(client.interactions.list(filters={"feedbacks": [{"metric": f"score-{u}"}]}))) == {
        ids[0],
        ids[1],
        ids[3],
        ids[4],
    }
    ranged = client.interactions.list(
        filters={"feedbacks": [{"metric": f"score-{u}", "value": {"gte": 0.5, "lt": 0.9}}]}
    )
    assert set(_ids(ranged)) == {ids[3], ids[4]}
    assert set(_ids(client.interactions.list(filters={"comparisons": [{"metric": f"pref-{u}"}]}))) == {ids[0], ids[3]}
    assert set(_ids(client.interactions.list(filters={"prompt": "PROMPT P2"}))) == {ids[2], ids[4], ids[5]}
    assert _ids(client.interactions.list(filters={"completion": "answer 3"})) == [ids[3]]
    combined = client.interactions.list(
        filters={"models": [traffic["a"]], "session_id": traffic["s1"], "labels": [{"key": "env", "value": ["dev"]}]}
    )
    assert _ids(combined) == [ids[1]]
    with pytest.raises(NotFoundError):
        client.interactions.list(filters={"feedbacks": [{"metric": f"nope-{u}"}]})
    with pytest.raises(ValueError):
        client.interactions.list(filters={"colour": "red"})


def test_advanced_filter_expression(server, traffic: dict) -> None:
    query = """query($f: ListCompletionsFilterInput!) {
      completions(filter: $f, page: {first: 50}) { totalCount nodes { id } }
    }"""
    ids, u = traffic["ids"], traffic["unique"]
    expression = {
        "or": [
            {"and": [{"model": {"eq": traffic["b"]}}, {"not": {"label": {"key": "env"}}}]},
            {"feedbacks": {"metric": f"score-{u}", "value": {"gt": 0.8}}},
        ]
    }
    data = graphql(server, query, {"f": {"useCase": traffic["uc"], "advancedFilter": expression}})["data"]
    assert {n["id"] for n in data["completions"]["nodes"]} == {ids[3], ids[5], ids[0]}
    by_label = {"label": {"key": "env", "value": {"in": ["dev", "prod"], "neq": "prod"}}}
    data = graphql(server, query, {"f": {"useCase": traffic["uc"], "advancedFilter": by_label}})["data"]
    assert [n["id"] for n in data["completions"]["nodes"]] == [ids[1]]


def test_order_and_pages(client, traffic: dict) -> None:
    ids = traffic["ids"]
    oldest_first = client.interactions.list(order=[{"field": "created_at", "order": "ASC"}])
    assert _ids(oldest_first) == ids
    seen, after = [], None
    while True:
        page = client.interactions.list(
            page={"first": 4, **({"after": after} if after else {})}, order=[{"field": "created_at", "order": "ASC"}]
        )
        seen += _ids(page)
        if not page.page_info.has_next_page:
            break
        after = page.page_info.end_cursor
    assert seen == ids
    last_two = client.interactions.list(page={"last": 2})
    assert _ids(last_two) == [ids[1], ids[0]]
    with pytest.raises(ValidationError):
        client.interactions.list(order=[{"field": "labels", "order": "ASC"}])
    with pytest.raises(ValidationError):
        client.interactions.list(page={"first": 2, "after": "not-a-cursor"})


def test_pages_stay_correct_while_rows_arrive(client, traffic: dict) -> None:
    ids = traffic["ids"]
    first = client.interactions.list(page={"first": 2})
    assert _ids(first) == [ids[5], ids[4]]
    # New traffic arrives between page reads (newest first: it lands before the cursor).
    for i in range(3):
        client.interactions.create(messages=msgs(), completion=f"late {i}")
    rest, after = [], first.page_info.end_cursor
    while after:
        page = client.interactions.list(page={"first": 2, "after": after})
        rest += _ids(page)
        after = page.page_info.end_cursor if page.page_info.has_next_page else None
    assert rest == [ids[3], ids[2], ids[1], ids[0]]
    assert client.interactions.list().total_count == 9


def test_group_by_model_and_prompt(client, traffic: dict) -> None:
    u = traffic["unique"]
    by_model = client.interactions.list(group_by="model")
    assert by_model.group_by == "MODEL" and by_model.total_count == 2
    groups = {g.key: g for g in by_model.nodes}
    assert {k: g.count for k, g in groups.items()} == {traffic["a"]: 3, traffic["b"]: 3}
    [stats_a] = groups[traffic["a"]].direct_feedbacks_stats
    assert stats_a.metric.key == f"score-{u}" and stats_a.feedbacks == 2
    assert stats_a.average == pytest.approx(0.5) and (stats_a.min, stats_a.max) == (0.1, 0.9)
    assert stats_a.sum == pytest.approx(1.0) and stats_a.stddev == pytest.approx(0.565685, rel=1e-4)
    assert {n.id for n in groups[traffic["b"]].completions.nodes} == set(traffic["ids"][3:])
    by_prompt = client.interactions.list(group_by="prompt", filters={"models": [traffic["b"]]})
    assert sorted(g.count for g in by_prompt.nodes) == [1, 2]
    paged = client.interactions.list(group_by="prompt", page={"first": 1}, order=[{"field": "count", "order": "DESC"}])
    assert paged.total_count == 2 and len(paged.nodes) == 1 and paged.nodes[0].count == 3
    assert paged.page_info.has_next_page
    following = client.interactions.list(
        group_by="prompt",
        page={"first": 1, "after": paged.page_info.end_cursor},
        order=[{"field": "count", "order": "DESC"}],
    )
    assert len(following.nodes) == 1 and following.nodes[0].key != paged.nodes[0].key
    assert not following.page_info.has_next_page
