"""Campaign evaluation end to end: traffic and feedback in the database, sufficient statistics in SQL,
the evaluator's round, the decision, the promotion of the winner and the event."""

from __future__ import annotations

import random
import uuid

from sqlalchemy import select

from adaptive_engine.server.db import models as orm
from tests.ab_tests.support import MIN_OBS, add_duels, add_traffic, evaluate, in_db, make_setup


def default_model(server, use_case_id: uuid.UUID) -> uuid.UUID:
    async def work(session):
        return (
            await session.execute(
                select(orm.ModelService.model_id).where(
                    orm.ModelService.use_case_id == use_case_id, orm.ModelService.is_default.is_(True)
                )
            )
        ).scalar_one()

    return in_db(server, work)


def events(server, use_case_id: uuid.UUID) -> list[orm.DomainEvent]:
    async def work(session):
        rows = await session.execute(select(orm.DomainEvent).where(orm.DomainEvent.use_case_id == use_case_id))
        return list(rows.scalars())

    return in_db(server, work)


def bools(rate: float, n: int) -> list[float]:
    ones = round(rate * n)
    return [1.0] * ones + [0.0] * (n - ones)


def test_no_decision_before_warm_up(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique)
    key = f"w-{unique}"
    ab_client.ab_tests.create(key, s.metrics["ok"], s.models, auto_deploy=True, use_case=s.use_case)
    half = MIN_OBS // 2
    add_traffic(ab_server, key, s.metrics["ok"], {s.model_ids[0]: bools(0.0, half), s.model_ids[1]: bools(1.0, half)})
    evaluate(ab_server)
    got = ab_client.ab_tests.get(key)
    assert got.status == "WARMUP" and not got.has_enough_feedbacks and got.feedbacks == 2 * half
    assert got.report.warming_up and got.report.decision == "continue" and got.report.winner is None
    assert default_model(ab_server, s.use_case_id) == s.model_ids[0]


def test_clear_winner_goes_done_and_is_deployed_with_an_event(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique)
    key = f"win-{unique}"
    ab_client.ab_tests.create(key, s.metrics["ok"], s.models, auto_deploy=True, use_case=s.use_case)
    add_traffic(ab_server, key, s.metrics["ok"], {s.model_ids[0]: bools(0.2, 60), s.model_ids[1]: bools(0.9, 60)})
    assert evaluate(ab_server) >= 1
    got = ab_client.ab_tests.get(key)
    assert got.status == "DONE" and got.end_date is not None and got.has_enough_feedbacks
    assert got.winner.key == s.models[1]
    report = got.report
    assert report.decision == "winner" and report.winner.key == s.models[1]
    assert report.p_value is not None and report.p_value <= 0.05
    by_key = {v.variant.key: v for v in report.variants}
    low = by_key[s.models[0]]
    assert low.feedbacks == 60 and abs(low.mean - 0.2) < 1e-9
    assert low.interval.start < 0.2 < low.interval.end and low.interval.middle == low.mean
    assert low.assignments == 60
    (pair,) = report.pairs
    assert pair.p_value <= 0.05 and pair.interval_start > 0  # mean(b) - mean(a) is positive
    # promoted in the same transaction, announced once
    assert default_model(ab_server, s.use_case_id) == s.model_ids[1]
    (event,) = events(ab_server, s.use_case_id)
    assert event.type == "ab_campaign.completed"
    assert event.payload["winner"] == s.models[1] and event.payload["autoDeployed"] is True
    # a finished campaign is not re-evaluated, and frees the use case
    evaluate(ab_server)
    assert len(events(ab_server, s.use_case_id)) == 1
    assert [c.key for c in ab_client.ab_tests.list(status="done", use_case=s.use_case)] == [key]
    ab_client.ab_tests.create(f"next-{unique}", s.metrics["ok"], s.models, use_case=s.use_case)


def test_lower_is_better_picks_the_lower_mean_and_respects_auto_deploy_off(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique)
    key = f"lat-{unique}"
    ab_client.ab_tests.create(key, s.metrics["latency"], s.models, auto_deploy=False, use_case=s.use_case)
    rng = random.Random(3)
    add_traffic(
        ab_server,
        key,
        s.metrics["latency"],
        {
            s.model_ids[0]: [2.0 + rng.gauss(0, 0.3) for _ in range(50)],
            s.model_ids[1]: [1.0 + rng.gauss(0, 0.3) for _ in range(50)],
        },
    )
    evaluate(ab_server)
    got = ab_client.ab_tests.get(key)
    assert got.status == "DONE" and got.winner.key == s.models[1]
    assert default_model(ab_server, s.use_case_id) == s.model_ids[0]  # not deployed
    assert events(ab_server, s.use_case_id)[0].payload["autoDeployed"] is False


def test_sample_ratio_mismatch_holds_the_decision(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique)
    key = f"srm-{unique}"
    ab_client.ab_tests.create(key, s.metrics["ok"], s.models, auto_deploy=True, use_case=s.use_case)
    # 90% of the assigned sessions went to one model: the assignment is broken
    add_traffic(ab_server, key, s.metrics["ok"], {s.model_ids[0]: bools(0.2, 180), s.model_ids[1]: bools(0.9, 20)})
    evaluate(ab_server)
    got = ab_client.ab_tests.get(key)
    assert got.status == "IN_PROGRESS"
    assert got.report.sample_ratio_mismatch and got.report.sample_ratio_p_value < 0.001
    assert got.report.winner is None and any("sample-ratio" in n for n in got.report.notes)
    assert default_model(ab_server, s.use_case_id) == s.model_ids[0]


def test_offline_interactions_count_as_feedback_not_as_assignments(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique)
    key = f"off-{unique}"
    ab_client.ab_tests.create(key, s.metrics["score"], s.models, use_case=s.use_case)
    add_traffic(
        ab_server,
        key,
        s.metrics["score"],
        {s.model_ids[0]: [1.0, 2.0] * 40, s.model_ids[1]: [1.0, 2.0] * 5},
        source="OFFLINE",
    )
    evaluate(ab_server)
    report = ab_client.ab_tests.get(key).report
    assert [v.assignments for v in report.variants] == [0, 0]
    assert [v.feedbacks for v in report.variants] == [80, 10]
    assert not report.sample_ratio_mismatch


def test_sessions_are_the_assignment_unit(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique)
    key = f"units-{unique}"
    ab_client.ab_tests.create(key, s.metrics["score"], s.models, use_case=s.use_case)
    # a chatty session makes many requests on its (sticky) model: still one unit
    add_traffic(
        ab_server,
        key,
        s.metrics["score"],
        {s.model_ids[0]: [1.0] * 100, s.model_ids[1]: [1.0] * 30},
        units={s.model_ids[0]: 30, s.model_ids[1]: 30},
    )
    evaluate(ab_server)
    report = ab_client.ab_tests.get(key).report
    assert [v.assignments for v in report.variants] == [30, 30]
    assert not report.sample_ratio_mismatch


def test_preference_campaign_decides_on_duels(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique)
    key = f"pref-{unique}"
    ab_client.ab_tests.create(
        key, s.metrics["pref"], s.models, feedback_type="preference", auto_deploy=True, use_case=s.use_case
    )
    a, b = s.model_ids
    duels = [(b, a, None)] * 45 + [(a, b, None)] * 5 + [(a, b, "good")] * 3 + [(b, a, "bad")] * 2
    add_duels(ab_server, key, s.metrics["pref"], duels)
    evaluate(ab_server)
    got = ab_client.ab_tests.get(key)
    assert got.status == "DONE" and got.winner.key == s.models[1] and got.feedbacks == 55
    by_key = {v.variant.key: v for v in got.report.variants}
    (vs_a,) = by_key[s.models[1]].comparisons
    assert (vs_a.wins, vs_a.losses, vs_a.ties_good, vs_a.ties_bad, vs_a.feedbacks) == (45, 5, 3, 2, 55)
    assert vs_a.variant.key == s.models[0]
    assert abs(by_key[s.models[1]].mean - 0.9) < 1e-9  # ties excluded from the win rate
    assert default_model(ab_server, s.use_case_id) == b


def test_duels_within_one_model_or_outside_the_campaign_do_not_count(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique)
    key = f"pref0-{unique}"
    ab_client.ab_tests.create(key, s.metrics["pref"], s.models, feedback_type="preference", use_case=s.use_case)
    a, _b = s.model_ids
    add_duels(ab_server, key, s.metrics["pref"], [(a, a, None)] * 30)
    assert ab_client.ab_tests.get(key).feedbacks == 0


def test_three_models_need_a_clear_best(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique, n_models=3)
    key = f"three-{unique}"
    ab_client.ab_tests.create(key, s.metrics["score"], s.models, auto_deploy=True, use_case=s.use_case)
    rng = random.Random(5)
    # two models tie at the top: no winner, whatever the evidence against the third
    add_traffic(
        ab_server,
        key,
        s.metrics["score"],
        {
            s.model_ids[0]: [rng.gauss(0.0, 1.0) for _ in range(80)],
            s.model_ids[1]: [rng.gauss(3.0, 1.0) for _ in range(80)],
            s.model_ids[2]: [rng.gauss(3.0, 1.0) for _ in range(80)],
        },
    )
    evaluate(ab_server)
    got = ab_client.ab_tests.get(key)
    assert got.status == "IN_PROGRESS" and got.report.winner is None
    assert len(got.report.pairs) == 3
    vs_first = [p for p in got.report.pairs if p.variant_a.key == s.models[0]]
    assert all(p.p_value <= 0.05 for p in vs_first)  # both top models beat the first, Bonferroni-adjusted
    # the third pulls ahead (traffic stays balanced, or the sample-ratio check would hold the decision)
    add_traffic(
        ab_server,
        key,
        s.metrics["score"],
        {
            s.model_ids[0]: [rng.gauss(0.0, 1.0) for _ in range(80)],
            s.model_ids[1]: [rng.gauss(3.0, 1.0) for _ in range(80)],
            s.model_ids[2]: [rng.gauss(6.0, 1.0) for _ in range(80)],
        },
    )
    evaluate(ab_server)
    got = ab_client.ab_tests.get(key)
    assert got.status == "DONE" and got.winner.key == s.models[2]
    assert default_model(ab_server, s.use_case_id) == s.model_ids[2]


def test_two_replicas_evaluating_at_once_promote_once(ab_server, ab_client, unique: str) -> None:
    import asyncio

    from adaptive_engine.server.db.engine import create_engine, create_sessionmaker
    from adaptive_engine.server.domains.ab_tests.evaluator import stats_config
    from adaptive_engine.server.domains.ab_tests.service import evaluate_active

    s = make_setup(ab_server, ab_client, unique)
    key = f"race-{unique}"
    ab_client.ab_tests.create(key, s.metrics["ok"], s.models, auto_deploy=True, use_case=s.use_case)
    add_traffic(ab_server, key, s.metrics["ok"], {s.model_ids[0]: bools(0.1, 60), s.model_ids[1]: bools(0.9, 60)})

    async def both() -> list[int]:
        engines = [create_engine(ab_server.settings.resolved_database_url) for _ in range(2)]
        try:
            config = stats_config(ab_server.settings)
            return list(await asyncio.gather(*(evaluate_active(create_sessionmaker(e), config) for e in engines)))
        finally:
            for engine in engines:
                await engine.dispose()

    ended = asyncio.run(both())
    assert sum(ended) == 1
    assert ab_client.ab_tests.get(key).status == "DONE"
    assert [e.type for e in events(ab_server, s.use_case_id)] == ["ab_campaign.completed"]
    assert default_model(ab_server, s.use_case_id) == s.model_ids[1]


def test_an_evaluation_on_a_stale_view_changes_nothing(ab_server, ab_client, unique: str) -> None:
    """Replica B loaded the campaign while it was active; replica A ends it; B's evaluation then must
    neither end it again nor undo A's end (its UPDATE is conditional on the campaign being active)."""
    import asyncio

    from sqlalchemy.exc import OperationalError

    from adaptive_engine.server.db.engine import create_engine, create_sessionmaker
    from adaptive_engine.server.domains.ab_tests.evaluator import stats_config
    from adaptive_engine.server.domains.ab_tests.service import evaluate_campaign

    s = make_setup(ab_server, ab_client, unique)
    key = f"stale-{unique}"
    ab_client.ab_tests.create(key, s.metrics["ok"], s.models, auto_deploy=True, use_case=s.use_case)
    add_traffic(ab_server, key, s.metrics["ok"], {s.model_ids[0]: bools(0.1, 60), s.model_ids[1]: bools(0.9, 60)})
    config = stats_config(ab_server.settings)

    async def interleave() -> tuple[bool, bool]:
        engine_a = create_engine(ab_server.settings.resolved_database_url)
        engine_b = create_engine(ab_server.settings.resolved_database_url)
        try:
            async with create_sessionmaker(engine_b)() as session_b:
                stale = (await session_b.execute(select(orm.AbCampaign).where(orm.AbCampaign.key == key))).scalar_one()
                assert stale.status == "WARMUP"
                async with create_sessionmaker(engine_a)() as session_a:
                    fresh = await session_a.get(orm.AbCampaign, stale.id)
                    ended_a = (await evaluate_campaign(session_a, fresh, config)).ended_now
                    await session_a.commit()
                try:
                    ended_b = (await evaluate_campaign(session_b, stale, config)).ended_now
                    await session_b.commit()
                except OperationalError:  # SQLite may refuse the stale writer outright: also nothing changed
                    await session_b.rollback()
                    ended_b = False
            return ended_a, ended_b
        finally:
            await engine_a.dispose()
            await engine_b.dispose()

    assert asyncio.run(interleave()) == (True, False)
    got = ab_client.ab_tests.get(key)
    assert got.status == "DONE" and got.winner.key == s.models[1]
    assert [e.type for e in events(ab_server, s.use_case_id)] == ["ab_campaign.completed"]
    assert default_model(ab_server, s.use_case_id) == s.model_ids[1]


def test_feedback_is_clustered_by_session_in_sql(ab_server, ab_client, unique: str) -> None:
    """Ten sessions per model, each giving ten identical thumbs: as independent values (100 per model,
    50% vs 80%) the test would decide; counted as the ten units they are, it must not."""
    s = make_setup(ab_server, ab_client, unique)
    key = f"clu-{unique}"
    ab_client.ab_tests.create(key, s.metrics["ok"], s.models, use_case=s.use_case)
    # add_traffic puts value i in session i % 10
    add_traffic(
        ab_server,
        key,
        s.metrics["ok"],
        {
            s.model_ids[0]: [1.0 if i % 10 < 5 else 0.0 for i in range(100)],
            s.model_ids[1]: [1.0 if i % 10 < 8 else 0.0 for i in range(100)],
        },
        units={s.model_ids[0]: 10, s.model_ids[1]: 10},
    )
    evaluate(ab_server)
    got = ab_client.ab_tests.get(key)
    assert got.status == "IN_PROGRESS" and got.report.winner is None and got.report.p_value > 0.5
    assert [v.assignments for v in got.report.variants] == [10, 10]
