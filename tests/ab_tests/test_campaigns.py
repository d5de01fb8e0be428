"""A/B campaigns through our SDK against the live server: create, get, list, cancel, bad input."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from adaptive_engine.sdk.errors import ConflictError, NotFoundError, ValidationError
from adaptive_engine.server.db import models as orm
from tests.ab_tests.support import in_db, make_setup


def campaign_count(server) -> int:
    async def work(session) -> int:
        return (await session.execute(select(func.count()).select_from(orm.AbCampaign))).scalar_one()

    return in_db(server, work)


def test_create_get_list_cancel(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique)
    created = ab_client.ab_tests.create(
        ab_test_key=f"t-{unique}",
        feedback_key=s.metrics["ok"],
        models=s.models,
        traffic_split=0.5,
        auto_deploy=True,
        use_case=s.use_case,
    )
    assert created.status == "WARMUP" and created.begin_date > 0 and created.end_date is None
    assert [m.key for m in created.models] == s.models
    assert created.feedback_type == "DIRECT" and created.traffic_split == 0.5 and created.auto_deploy
    assert created.metric.key == s.metrics["ok"] and created.use_case.key == s.use_case

    got = ab_client.ab_tests.get(f"t-{unique}")
    assert got.feedbacks == 0 and not got.has_enough_feedbacks
    report = got.report
    assert report.decision == "continue" and report.winner is None and report.warming_up
    assert [v.variant.key for v in report.variants] == s.models
    assert all(v.feedbacks == 0 and v.interval is None and v.comparisons is None for v in report.variants)
    assert report.p_value == 1.0 and not report.sample_ratio_mismatch
    assert ab_client.ab_tests.get(created.id).key == f"t-{unique}"

    listed = ab_client.ab_tests.list(use_case=s.use_case)
    assert [c.key for c in listed] == [f"t-{unique}"]
    assert [c.key for c in ab_client.ab_tests.list(active=True, use_case=s.use_case)] == [f"t-{unique}"]
    assert ab_client.ab_tests.list(active=False, use_case=s.use_case) == []
    assert [c.key for c in ab_client.ab_tests.list(status="warmup", use_case=s.use_case)] == [f"t-{unique}"]
    assert ab_client.ab_tests.list(status="done", use_case=s.use_case) == []

    # one active campaign per use case handles the default traffic
    with pytest.raises(ConflictError, match="already has an active A/B test"):
        ab_client.ab_tests.create(f"t2-{unique}", s.metrics["ok"], s.models, use_case=s.use_case)

    assert ab_client.ab_tests.cancel(f"t-{unique}") == f"t-{unique}"
    cancelled = ab_client.ab_tests.get(f"t-{unique}")
    assert cancelled.status == "CANCELLED" and cancelled.end_date is not None
    assert [c.key for c in ab_client.ab_tests.list(status="cancelled", use_case=s.use_case)] == [f"t-{unique}"]
    with pytest.raises(ConflictError, match="already cancelled"):
        ab_client.ab_tests.cancel(f"t-{unique}")

    # the use case is free again; a preference campaign this time
    pref = ab_client.ab_tests.create(
        f"t3-{unique}", s.metrics["pref"], s.models, feedback_type="preference", use_case=s.use_case
    )
    assert pref.feedback_type == "COMPARISON"
    assert ab_client.ab_tests.get(f"t3-{unique}").report.variants[0].comparisons == []

    # the cancellation left an event for notifications
    async def events(session):
        rows = await session.execute(select(orm.DomainEvent).where(orm.DomainEvent.use_case_id == s.use_case_id))
        return [(e.type, e.payload["campaignKey"]) for e in rows.scalars()]

    assert in_db(ab_server, events) == [("ab_campaign.cancelled", f"t-{unique}")]


def test_models_given_by_id_or_model_service_id(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique)

    async def service_id(session):
        return (
            await session.execute(select(orm.ModelService.id).where(orm.ModelService.model_id == s.model_ids[1]))
        ).scalar_one()

    created = ab_client.ab_tests.create(
        f"ids-{unique}",
        s.metrics["score"],
        [str(s.model_ids[0]), str(in_db(ab_server, service_id))],
        use_case=s.use_case,
    )
    assert [m.key for m in created.models] == s.models


@pytest.mark.parametrize(
    "case, error, message",
    [
        ("unknown_model", NotFoundError, "not found"),
        ("unattached_model", ValidationError, "not attached"),
        ("single_model", ValidationError, "at least two"),
        ("duplicate_model", ValidationError, "listed twice"),
        ("embedding_model", ValidationError, "compare chat models"),
        ("split_zero", ValidationError, "traffic_split"),
        ("split_above_one", ValidationError, "traffic_split"),
        ("unknown_key", NotFoundError, "feedback key"),
        ("unlinked_key", ValidationError, "not linked"),
        ("bad_test_key", ValidationError, "malformed"),
        ("unknown_use_case", NotFoundError, "use case"),
    ],
)
def test_bad_input_is_refused_and_changes_nothing(ab_server, ab_client, unique, case, error, message) -> None:
    s = make_setup(ab_server, ab_client, unique)
    args = dict(ab_test_key=f"bad-{unique}", feedback_key=s.metrics["ok"], models=s.models, use_case=s.use_case)
    if case == "unknown_model":
        args["models"] = [s.models[0], "no-such-model"]
    elif case == "unattached_model":
        args["models"] = [s.models[0], f"loose-{unique}"]
    elif case == "single_model":
        args["models"] = [s.models[0]]
    elif case == "duplicate_model":
        args["models"] = [s.models[0], s.models[0]]
    elif case == "embedding_model":
        args["models"] = [s.models[0], f"emb-{unique}"]
    elif case == "split_zero":
        args["traffic_split"] = 0.0
    elif case == "split_above_one":
        args["traffic_split"] = 1.5
    elif case == "unknown_key":
        args["feedback_key"] = "no-such-key"
    elif case == "unlinked_key":
        args["feedback_key"] = s.metrics["unlinked"]
    elif case == "bad_test_key":
        args["ab_test_key"] = "bad key!"
    elif case == "unknown_use_case":
        args["use_case"] = "no-such-use-case"
    before = campaign_count(ab_server)
    with pytest.raises(error, match=message):
        ab_client.ab_tests.create(**args)
    assert campaign_count(ab_server) == before


def test_duplicate_key_and_missing_campaigns(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique)
    ab_client.ab_tests.create(f"dup-{unique}", s.metrics["ok"], s.models, use_case=s.use_case)
    other = make_setup(ab_server, ab_client, unique + "o")
    before = campaign_count(ab_server)
    with pytest.raises(ConflictError, match="already exists"):
        ab_client.ab_tests.create(f"dup-{unique}", other.metrics["ok"], other.models, use_case=other.use_case)
    assert campaign_count(ab_server) == before
    with pytest.raises(NotFoundError):
        ab_client.ab_tests.get("no-such-test")
    with pytest.raises(NotFoundError):
        ab_client.ab_tests.cancel("no-such-test")
    with pytest.raises(ValueError):
        ab_client.ab_tests.create(f"x-{unique}", s.metrics["ok"], s.models, feedback_type="thumbs", use_case=s.use_case)
    with pytest.raises(ValueError):
        ab_client.ab_tests.list(status="finished", use_case=s.use_case)


def make_user(server, unique: str, use_case_id=None, role: str = "viewer") -> str:
    """A user in a team of their own, with ``role`` on the use case (when given); returns an API key."""
    from adaptive_engine.server.domains.identity.service import create_api_key

    async def work(session) -> str:
        role_row = (await session.execute(select(orm.Role).where(orm.Role.key == role))).scalar_one()
        user = orm.User(email=f"{role}-{unique}@example.com", name=role)
        team = orm.Team(key=f"team-{role}-{unique}", name="team")
        session.add_all([user, team])
        await session.flush()
        session.add(orm.TeamMember(user_id=user.id, team_id=team.id, role_id=role_row.id))
        if use_case_id is not None:
            session.add(orm.UseCaseShare(use_case_id=use_case_id, team_id=team.id, role_id=role_row.id))
        await session.flush()
        return await create_api_key(session, user)

    return in_db(server, work)


def test_permissions(ab_server, ab_client, unique: str) -> None:
    from adaptive_engine import Adaptive
    from adaptive_engine.sdk.errors import PermissionDeniedError

    s = make_setup(ab_server, ab_client, unique)
    ab_client.ab_tests.create(f"perm-{unique}", s.metrics["ok"], s.models, use_case=s.use_case)
    with Adaptive(ab_server.base_url, api_key=make_user(ab_server, unique, s.use_case_id)) as viewer:
        assert viewer.ab_tests.get(f"perm-{unique}").key == f"perm-{unique}"
        assert [c.key for c in viewer.ab_tests.list(use_case=s.use_case)] == [f"perm-{unique}"]
        with pytest.raises(PermissionDeniedError):
            viewer.ab_tests.cancel(f"perm-{unique}")
        with pytest.raises(PermissionDeniedError):
            viewer.ab_tests.create(f"perm2-{unique}", s.metrics["ok"], s.models, use_case=s.use_case)
    with Adaptive(ab_server.base_url, api_key=make_user(ab_server, unique + "o", None)) as outsider:
        with pytest.raises(NotFoundError):
            outsider.ab_tests.get(f"perm-{unique}")
        with pytest.raises(NotFoundError):
            outsider.ab_tests.list(use_case=s.use_case)
    assert ab_client.ab_tests.get(f"perm-{unique}").status == "WARMUP"


def test_a_model_in_an_active_test_cannot_be_detached(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique, n_models=3)
    ab_client.ab_tests.create(f"det-{unique}", s.metrics["ok"], s.models[:2], use_case=s.use_case)
    with pytest.raises(ConflictError, match=f"active A/B test 'det-{unique}'"):
        ab_client.models.detach(s.models[1], use_case=s.use_case)
    assert s.models[1] in [m.key for m in ab_client.use_cases.get(s.use_case).model_services]
    ab_client.models.detach(s.models[2], use_case=s.use_case)  # not in the test
    ab_client.ab_tests.cancel(f"det-{unique}")
    ab_client.models.detach(s.models[1], use_case=s.use_case)


async def test_async_client(ab_server, ab_client, unique: str) -> None:
    from adaptive_engine import AsyncAdaptive

    s = await asyncio.to_thread(make_setup, ab_server, ab_client, unique)  # set-up runs its own loop
    async with AsyncAdaptive(ab_server.base_url, api_key=ab_server.api_key) as client:
        created = await client.ab_tests.create(f"as-{unique}", s.metrics["ok"], s.models, use_case=s.use_case)
        assert created.status == "WARMUP"
        assert (await client.ab_tests.get(f"as-{unique}")).report.decision == "continue"
        assert [c.key for c in await client.ab_tests.list(use_case=s.use_case)] == [f"as-{unique}"]
        assert await client.ab_tests.cancel(f"as-{unique}") == f"as-{unique}"
        with pytest.raises(ConflictError):
            await client.ab_tests.cancel(f"as-{unique}")
    assert ab_client.ab_tests.get(f"as-{unique}").status == "CANCELLED"
