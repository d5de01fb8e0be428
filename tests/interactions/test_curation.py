"""Curation of logged traffic: updateCompletion (labels, metadata), addDirectFeedback, updateFeedback, and a
completion's session, history and siblingsCount, through our SDK and GraphQL, on both databases."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk import errors
from tests.interactions.helpers import graphql, msgs
from tests.support import LiveServer


@pytest.fixture
def use_case(client: Adaptive, unique: str) -> str:
    client.use_cases.create(key=f"cur-{unique}")
    client.set_default_use_case(f"cur-{unique}")
    return f"cur-{unique}"


def _labels(interaction) -> dict[str, str]:  # noqa: ANN001
    return {label.key: label.value for label in interaction.labels}


def test_labels_and_metadata(client: Adaptive, use_case: str) -> None:
    created = client.interactions.create(
        messages=[{"role": "user", "content": "hi"}], completion="hello", labels={"split": "train", "lang": "en"}
    )
    cid = created.completion_id
    updated = client.interactions.update_completion(
        cid,
        add_labels={"reviewed": "yes", "split": "test"},
        remove_labels={"lang": "en"},
        metadata={"reward": {"ref": "x"}},
    )
    assert _labels(updated) == {"split": "test", "reviewed": "yes"} and updated.user_metadata == {
        "reward": {"ref": "x"}
    }
    got = client.interactions.get(cid)
    assert _labels(got) == {"split": "test", "reviewed": "yes"} and got.user_metadata == {"reward": {"ref": "x"}}
    assert _labels(client.interactions.update_completion(cid, set_labels={"only": "this"})) == {"only": "this"}
    # Listing by the new label finds it.
    page = client.interactions.list(filters={"labels": [{"key": "only", "value": ["this"]}]})
    assert [i.id for i in page.nodes] == [str(cid)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"remove_labels": {"lang": "fr"}}, "has no label lang=fr"),
        ({"set_labels": {"a": "b"}, "add_labels": {"c": "d"}}, "setLabels replaces every label"),
        ({"add_labels": {" ": "x"}}, "key must not be empty"),
        ({"add_labels": {"k": "v" * 201}}, "at most 200 characters"),
    ],
)
def test_bad_updates_change_nothing(client: Adaptive, use_case: str, kwargs: dict, message: str) -> None:
    created = client.interactions.create(
        messages=[{"role": "user", "content": "hi"}], completion="hello", labels={"lang": "en"}
    )
    with pytest.raises(errors.ValidationError, match=message):
        client.interactions.update_completion(created.completion_id, **kwargs)
    assert _labels(client.interactions.get(created.completion_id)) == {"lang": "en"}


def test_unknown_completion_is_not_found(client: Adaptive, use_case: str) -> None:
    with pytest.raises(errors.NotFoundError):
        client.interactions.update_completion(uuid.uuid4(), add_labels={"a": "b"})
    with pytest.raises(errors.NotFoundError):
        client.feedback.update_feedback(uuid.uuid4(), value=1)


def test_feedback_added_and_corrected(server: LiveServer, client: Adaptive, use_case: str, unique: str) -> None:
    key = f"score-{unique}"
    client.feedback.register_key(key, kind="scalar")
    ok = f"ok-{unique}"
    client.feedback.register_key(ok, kind="bool")
    created = client.interactions.create(messages=[{"role": "user", "content": "hi"}], completion="hello")
    added = client.feedback.add_direct_feedback(created.completion_id, key, 0.25, reason="manual", details="first look")
    assert added.value == 0.25 and added.reason == "manual" and added.metric.key == key
    fixed = client.feedback.update_feedback(added.id, value=0.75, details="second look")
    assert fixed.id == added.id and fixed.value == 0.75 and fixed.details == "second look"
    feedbacks = client.interactions.get(created.completion_id).direct_feedbacks
    assert [(f.value, f.details) for f in feedbacks] == [(0.75, "second look")]
    # Statistics read the hourly roll-ups: the corrected value replaced the first one there too.
    stats = graphql(
        server,
        """query($f: FeedbackStatisticsFilter!) { feedbackStatistics(filter: $f) { count mean min max } }""",
        {"f": {"useCase": use_case, "metric": key}},
    )
    assert not stats.get("errors"), stats
    assert stats["data"]["feedbackStatistics"] == [{"count": 1, "mean": 0.75, "min": 0.75, "max": 0.75}]
    with pytest.raises(errors.ValidationError, match="value"):
        client.feedback.add_direct_feedback(created.completion_id, ok, 5)
    with pytest.raises(errors.ValidationError, match="give value or details"):
        client.feedback.update_feedback(added.id)
    with pytest.raises(errors.NotFoundError, match="no-such-key"):
        client.feedback.add_direct_feedback(created.completion_id, "no-such-key", 1)


def test_session_history_and_siblings(server: LiveServer, client: Adaptive, use_case: str) -> None:
    session_id = uuid.uuid4()
    turns = []
    for i in range(3):
        turns.append(
            client.interactions.create(
                messages=[{"role": "user", "content": f"turn {i}"}],
                completion=f"answer {i}",
                session_id=session_id,
                created_at=f"2026-01-01T00:00:0{i}Z",
            ).completion_id
        )
    client.interactions.create(messages=[{"role": "user", "content": "turn 2"}], completion="another answer")
    query = """query($u: IdOrKey!, $id: UUID!, $f: ListCompletionsFilterInput!) { completion(useCase: $u, id: $id) {
        session { id turns { id completion } } history { level completionId prompt completion }
        siblingsCount(filter: $f) hasUserMetadata } }"""
    body = graphql(server, query, {"u": use_case, "id": str(turns[2]), "f": {"useCase": use_case}})
    assert not body.get("errors"), body
    got = body["data"]["completion"]
    assert got["session"]["id"] == str(session_id)
    assert [t["completion"] for t in got["session"]["turns"]] == ["answer 0", "answer 1", "answer 2"]
    assert [(h["level"], h["prompt"], h["completion"]) for h in got["history"]] == [
        (1, "turn 1", "answer 1"),
        (2, "turn 0", "answer 0"),
    ]
    assert got["siblingsCount"] == 1 and got["hasUserMetadata"] is False
    narrowed = graphql(
        server, query, {"u": use_case, "id": str(turns[2]), "f": {"useCase": use_case, "sessionId": str(session_id)}}
    )
    assert narrowed["data"]["completion"]["siblingsCount"] == 0


def test_label_filters_follow_every_label_change(
    server: LiveServer, client: Adaptive, use_case: str, tmp_path: Path
) -> None:
    """After each add / remove / set of labels, every way of filtering by label (the list's labels, the advanced
    filter's label conditions, the export) selects exactly the completions whose labels say so."""
    labels = [{"split": "train", "lang": "en"}, {"split": "test"}, {}]
    ids = [
        str(client.interactions.create(messages=msgs(f"q{i}"), completion="a", labels=dict(given)).completion_id)
        for i, given in enumerate(labels)
    ]
    query = """query($f: ListCompletionsFilterInput!) { completions(filter: $f, page: {first: 50}) { nodes { id } } }"""

    def advanced(condition: dict) -> set[str]:
        data = graphql(server, query, {"f": {"useCase": use_case, "advancedFilter": {"label": condition}}})["data"]
        return {n["id"] for n in data["completions"]["nodes"]}

    def exported(filters: dict) -> set[str]:
        path = client.interactions.export(str(tmp_path / "x.jsonl"), filters=filters)
        return {json.loads(line)["id"] for line in Path(path).read_text().splitlines()}

    def check() -> None:
        def having(key: str, values: set[str] | None = None) -> set[str]:
            return {
                i for i, own in zip(ids, labels, strict=True) if key in own and (values is None or own[key] in values)
            }

        for key, value in (("split", "train"), ("split", "test"), ("lang", "en"), ("reviewed", "yes")):
            by_value = {"labels": [{"key": key, "value": [value]}]}
            assert {n.id for n in client.interactions.list(filters=by_value).nodes} == having(key, {value})
            assert {n.id for n in client.interactions.list(filters={"labels": [{"key": key}]}).nodes} == having(key)
            assert exported(by_value) == having(key, {value})
            assert advanced({"key": key, "value": {"eq": value}}) == having(key, {value})
            assert advanced({"key": key}) == having(key)
            assert advanced({"key": key, "value": {"neq": value}}) == set(ids) - having(key, {value})
        either = {"labels": [{"key": "split", "value": ["train", "test"]}]}
        assert {n.id for n in client.interactions.list(filters=either).nodes} == having("split", {"train", "test"})
        assert advanced({"key": "split", "value": {"in": ["train", "test"]}}) == having("split", {"train", "test"})

    check()
    client.interactions.update_completion(ids[0], add_labels={"reviewed": "yes", "split": "test"})
    labels[0] = {"split": "test", "lang": "en", "reviewed": "yes"}
    check()
    client.interactions.update_completion(ids[1], remove_labels={"split": "test"})
    labels[1] = {}
    check()
    client.interactions.update_completion(ids[2], set_labels={"split": "train", "lang": "en"})
    labels[2] = {"split": "train", "lang": "en"}
    check()
    client.interactions.update_completion(ids[0], set_labels={})
    labels[0] = {}
    check()
