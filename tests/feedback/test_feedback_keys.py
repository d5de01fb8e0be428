"""Feedback keys: register, list, get, link and unlink, through our SDK."""

from __future__ import annotations

import pytest

from adaptive_engine.sdk.errors import ConflictError, NotFoundError, ValidationError


def test_register_get_list(client, unique: str) -> None:
    created = client.feedback.register_key(f"acc-{unique}", kind="bool", name="Accuracy", description="right or wrong")
    assert (created.key, created.kind, created.name, created.scoring_type) == (
        f"acc-{unique}",
        "BOOL",
        "Accuracy",
        "HIGHER_IS_BETTER",
    )
    assert created.has_direct_feedbacks is False and created.has_comparison_feedbacks is False
    lower = client.feedback.register_key(f"lat-{unique}", kind="scalar", scoring_type="lower_is_better")
    assert lower.scoring_type == "LOWER_IS_BETTER" and lower.name == f"lat-{unique}"
    got = client.feedback.get_key(f"acc-{unique}")
    assert got.id == created.id and got.description == "right or wrong"
    assert client.feedback.get_key(created.id).key == f"acc-{unique}"
    keys = [k.key for k in client.feedback.list_keys()]
    assert f"acc-{unique}" in keys and f"lat-{unique}" in keys


def test_link_and_unlink(client, unique: str) -> None:
    client.use_cases.create(f"fk-uc-{unique}")
    client.feedback.register_key(f"k-{unique}", kind="scalar")
    linked = client.feedback.link(f"k-{unique}", use_case=f"fk-uc-{unique}")
    assert linked.key == f"k-{unique}"
    assert [m.key for m in client.use_cases.get(f"fk-uc-{unique}").metrics] == [f"k-{unique}"]
    assert [u.key for u in client.feedback.get_key(f"k-{unique}").use_cases] == [f"fk-uc-{unique}"]
    # Linking twice is harmless.
    client.feedback.link(f"k-{unique}", use_case=f"fk-uc-{unique}")
    assert client.feedback.unlink(f"k-{unique}", use_case=f"fk-uc-{unique}") == f"k-{unique}"
    assert client.use_cases.get(f"fk-uc-{unique}").metrics == []
    with pytest.raises(NotFoundError):
        client.feedback.unlink(f"k-{unique}", use_case=f"fk-uc-{unique}")


def test_bad_keys_change_nothing(client, unique: str) -> None:
    client.feedback.register_key(f"dup-{unique}", kind="bool")
    with pytest.raises(ConflictError):
        client.feedback.register_key(f"dup-{unique}", kind="scalar")
    assert client.feedback.get_key(f"dup-{unique}").kind == "BOOL"
    with pytest.raises(ValidationError):
        client.feedback.register_key(f"bad key {unique}", kind="bool")
    with pytest.raises(ValidationError):
        client.feedback.register_key(f"kind-{unique}", kind="text")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        client.feedback.get_key(f"kind-{unique}")
    with pytest.raises(NotFoundError):
        client.feedback.get_key(f"missing-{unique}")
    with pytest.raises(NotFoundError):
        client.feedback.link(f"missing-{unique}", use_case="nope-" + unique)


def test_feedback_links_its_key_again_after_an_unlink(client, unique: str) -> None:
    # The writer remembers links it committed (to skip re-linking); an unlink must make it forget them.
    use_case, key = f"relink-{unique}", f"relink-k-{unique}"
    client.use_cases.create(use_case)
    client.feedback.register_key(key, kind="scalar")
    for round_ in range(2):
        created = client.interactions.create(
            messages=[{"role": "user", "content": f"q{round_}"}],
            completion="a",
            use_case=use_case,
            feedbacks=[{"feedback_key": key, "value": 1.0}],
        )
        client.feedback.log_metric(value=2.0, completion_id=created.completion_id, feedback_key=key)
        assert [m.key for m in client.use_cases.get(use_case).metrics] == [key]
        client.feedback.unlink(key, use_case=use_case)
        assert client.use_cases.get(use_case).metrics == []
