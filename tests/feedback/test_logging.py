"""Logging feedback: metric values, preferences, outcomes; bad input is refused and changes nothing."""

from __future__ import annotations

import uuid

import pytest

from adaptive_engine.sdk.errors import NotFoundError, ValidationError
from tests.interactions.helpers import msgs, rest, seed_models


@pytest.fixture
def use_case(client, unique: str) -> str:
    key = f"fb-{unique}"
    client.use_cases.create(key)
    client.set_default_use_case(key)
    client.feedback.register_key(f"ok-{unique}", kind="bool")
    client.feedback.register_key(f"score-{unique}", kind="scalar")
    return key


def test_log_metric_shows_on_interaction(client, use_case: str, unique: str) -> None:
    logged = client.interactions.create(messages=msgs(), completion="Paris.")
    out = client.feedback.log_metric(
        True, logged.completion_id, f"ok-{unique}", user=uuid.UUID(int=7), details="correct"
    )
    client.feedback.log_metric(0.25, logged.completion_id, f"score-{unique}")
    got = client.interactions.get(logged.completion_id)
    by_key = {f.metric.key: f for f in got.direct_feedbacks}
    assert by_key[f"ok-{unique}"].id == out.feedback_id
    assert by_key[f"ok-{unique}"].value == 1.0 and by_key[f"ok-{unique}"].details == "correct"
    assert by_key[f"ok-{unique}"].user_id == str(uuid.UUID(int=7))
    assert by_key[f"score-{unique}"].value == 0.25
    assert by_key[f"ok-{unique}"].metric.has_direct_feedbacks is True
    # Logging on a key links it to the use case.
    assert {m.key for m in client.use_cases.get().metrics} == {f"ok-{unique}", f"score-{unique}"}
    listed = client.interactions.list(filters={"completion_id": logged.completion_id})
    assert len(listed.nodes[0].direct_feedbacks) == 2


@pytest.mark.parametrize("value", [0, 1, True, False, 1.0])
def test_bool_key_accepts_0_1_true_false(client, use_case: str, unique: str, value) -> None:
    logged = client.interactions.create(messages=msgs(), completion="Paris.")
    client.feedback.log_metric(value, logged.completion_id, f"ok-{unique}")
    assert client.interactions.get(logged.completion_id).direct_feedbacks[0].value == float(value)


def test_wrong_values_are_refused_and_change_nothing(client, server, use_case: str, unique: str) -> None:
    logged = client.interactions.create(messages=msgs(), completion="Paris.")
    cid = str(logged.completion_id)
    for value, key in (
        (0.5, f"ok-{unique}"),
        (2, f"ok-{unique}"),
        ("yes", f"ok-{unique}"),
        ("0.3", f"score-{unique}"),
        (True, f"score-{unique}"),
    ):
        with pytest.raises(ValidationError):
            client.feedback.log_metric(value, cid, key)
    response = rest(server, "/feedback", {"value": None, "completion_id": cid, "metric": f"score-{unique}"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "INVALID_INPUT"
    with pytest.raises(NotFoundError):
        client.feedback.log_metric(1, str(uuid.uuid4()), f"ok-{unique}")
    with pytest.raises(NotFoundError):
        client.feedback.log_metric(1, cid, f"nope-{unique}")
    assert client.interactions.get(cid).direct_feedbacks == []
    assert client.feedback.get_key(f"ok-{unique}").has_direct_feedbacks is False


def test_preferences_between_ids_and_texts(client, server, use_case: str, unique: str) -> None:
    seed_models(server, f"m-a-{unique}", f"m-b-{unique}")
    a = client.interactions.create(messages=msgs(), completion="Paris.", model=f"m-a-{unique}")
    b = client.interactions.create(messages=msgs(), completion="Lyon.", model=f"m-b-{unique}")
    out = client.feedback.log_preference(f"ok-{unique}", a.completion_id, b.completion_id, user=uuid.UUID(int=1))
    got = client.interactions.get(a.completion_id)
    [comparison] = got.comparison_feedbacks
    assert comparison.id == out.comparison_id and comparison.tied is None
    assert comparison.prefered_completion.id == str(a.completion_id)
    assert comparison.other_completion.model.key == f"m-b-{unique}"
    assert comparison.usecase.key == use_case
    assert client.interactions.get(b.completion_id).comparison_feedbacks[0].id == out.comparison_id
    # A text side answers the prompt of the logged side.
    tied = client.feedback.log_preference(
        f"ok-{unique}", a.completion_id, {"model": f"m-b-{unique}", "text": "Marseille."}, tied="bad"
    )
    text_side = [
        c for c in client.interactions.get(a.completion_id).comparison_feedbacks if c.id == tied.comparison_id
    ][0]
    assert text_side.tied == "bad" and text_side.other_completion.completion == "Marseille."
    # Both sides as text, with messages.
    both = client.feedback.log_preference(
        f"ok-{unique}",
        {"model": f"m-a-{unique}", "text": "4"},
        {"model": f"m-b-{unique}", "text": "5"},
        messages=msgs("2+2?"),
        tied="good",
    )
    page = client.interactions.list(filters={"prompt": "2+2?"})
    assert page.total_count == 2
    assert {n.comparison_feedbacks[0].id for n in page.nodes} == {both.comparison_id}


def test_bad_preferences_change_nothing(client, server, use_case: str, unique: str) -> None:
    seed_models(server, f"m-x-{unique}")
    a = client.interactions.create(messages=msgs(), completion="Paris.")
    before = client.interactions.list().total_count
    with pytest.raises(ValidationError):
        client.feedback.log_preference(f"ok-{unique}", a.completion_id, a.completion_id)
    with pytest.raises(NotFoundError):
        client.feedback.log_preference(f"ok-{unique}", a.completion_id, str(uuid.uuid4()))
    with pytest.raises(NotFoundError):
        client.feedback.log_preference(f"nope-{unique}", a.completion_id, {"model": f"m-x-{unique}", "text": "x"})
    with pytest.raises(NotFoundError):
        client.feedback.log_preference(f"ok-{unique}", a.completion_id, {"model": f"nope-{unique}", "text": "x"})
    with pytest.raises(ValidationError):
        # Both sides as text and no prompt.
        client.feedback.log_preference(
            f"ok-{unique}", {"model": f"m-x-{unique}", "text": "x"}, {"model": f"m-x-{unique}", "text": "y"}
        )
    with pytest.raises(ValidationError):
        client.feedback.log_preference(
            f"ok-{unique}",
            {"model": f"m-x-{unique}", "text": "x"},
            {"model": f"m-x-{unique}", "text": "y"},
            messages=[{"role": "user", "content": ""}],
        )
    response = rest(
        server,
        "/comparison",
        {
            "metric": f"ok-{unique}",
            "preferred_completion": str(a.completion_id),
            "other_completion": str(uuid.uuid4()),
            "tied": "maybe",
        },
    )
    assert response.status_code == 400
    assert client.interactions.list().total_count == before
    assert client.interactions.get(a.completion_id).comparison_feedbacks == []


def test_outcome(client, server, use_case: str, unique: str) -> None:
    session_id = uuid.uuid4()
    client.interactions.create(messages=msgs(), completion="Paris.", session_id=session_id)
    ok = rest(server, "/outcome", {"value": 1, "metric": f"ok-{unique}", "session_id": str(session_id)})
    assert ok.status_code == 201 and uuid.UUID(ok.json()["outcome_id"])
    missing = rest(server, "/outcome", {"value": 1, "metric": f"ok-{unique}", "session_id": str(uuid.uuid4())})
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "NOT_FOUND"
    wrong = rest(server, "/outcome", {"value": 0.5, "metric": f"ok-{unique}", "session_id": str(session_id)})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "INVALID_INPUT"
    unknown_key = rest(server, "/outcome", {"value": 1, "metric": f"nope-{unique}", "session_id": str(session_id)})
    assert unknown_key.status_code == 404
