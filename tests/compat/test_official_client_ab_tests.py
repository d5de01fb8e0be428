"""The official adaptive-sdk client's ab_tests.* against our server."""

from __future__ import annotations

import asyncio

import pytest

from tests.ab_tests.support import add_duels, add_traffic, evaluate, make_setup

adaptive_sdk = pytest.importorskip("adaptive_sdk")


@pytest.fixture
def official(server):
    return adaptive_sdk.Adaptive(base_url=server.base_url, api_key=server.api_key)


def test_metric_campaign_lifecycle(server, client, official, unique: str) -> None:
    s = make_setup(server, client, unique)
    created = official.ab_tests.create(
        ab_test_key=f"oc-{unique}",
        feedback_key=s.metrics["ok"],
        models=s.models,
        traffic_split=0.5,
        auto_deploy=True,
        use_case=s.use_case,
    )
    assert created.key == f"oc-{unique}" and created.status.value == "WARMUP" and created.begin_date > 0

    got = official.ab_tests.get(f"oc-{unique}")
    assert got.traffic_split == 0.5 and got.feedback_type.value == "DIRECT"
    assert got.metric.key == s.metrics["ok"] and got.use_case.key == s.use_case
    assert [m.key for m in got.models] == s.models
    assert got.feedbacks == 0 and not got.has_enough_feedbacks
    assert [v.variant.key for v in got.report.variants] == s.models

    assert [c.key for c in official.ab_tests.list(active=True, use_case=s.use_case)] == [f"oc-{unique}"]
    assert [c.key for c in official.ab_tests.list(status="warmup", use_case=s.use_case)] == [f"oc-{unique}"]

    # enough feedback for a clear decision (the default warm-up is 50 per model)
    add_traffic(
        server,
        f"oc-{unique}",
        s.metrics["ok"],
        {s.model_ids[0]: [1.0] * 12 + [0.0] * 48, s.model_ids[1]: [1.0] * 54 + [0.0] * 6},
    )
    evaluate(server)
    done = official.ab_tests.get(f"oc-{unique}")
    assert done.status.value == "DONE" and done.end_date is not None and done.has_enough_feedbacks
    assert done.feedbacks == 120 and done.report.p_value <= 0.05
    variant = {v.variant.key: v for v in done.report.variants}[s.models[1]]
    assert variant.feedbacks == 60 and variant.interval.start < variant.interval.middle < variant.interval.end
    assert [c.key for c in official.ab_tests.list(status="done", use_case=s.use_case)] == [f"oc-{unique}"]
    with pytest.raises(Exception, match="already done"):
        official.ab_tests.cancel(f"oc-{unique}")


def test_preference_campaign_and_cancel(server, client, official, unique: str) -> None:
    s = make_setup(server, client, unique)
    official.ab_tests.create(
        f"op-{unique}", s.metrics["pref"], s.models, feedback_type="preference", use_case=s.use_case
    )
    a, b = s.model_ids
    add_duels(server, f"op-{unique}", s.metrics["pref"], [(b, a, None)] * 4 + [(a, b, "good")])
    got = official.ab_tests.get(f"op-{unique}")
    assert got.feedback_type.value == "COMPARISON" and got.feedbacks == 5
    comparisons = {v.variant.key: v.comparisons for v in got.report.variants}
    (vs,) = comparisons[s.models[1]]
    assert (vs.wins, vs.losses, vs.ties_good, vs.ties_bad, vs.feedbacks) == (4, 0, 1, 0, 5)
    assert vs.variant.key == s.models[0]
    assert official.ab_tests.cancel(f"op-{unique}") == f"op-{unique}"
    assert official.ab_tests.get(f"op-{unique}").status.value == "CANCELLED"
    assert [c.key for c in official.ab_tests.list(status="cancelled", use_case=s.use_case)] == [f"op-{unique}"]
    assert official.ab_tests.list(active=True, use_case=s.use_case) == []


async def test_async_official_client(server, client, unique: str) -> None:
    s = await asyncio.to_thread(make_setup, server, client, unique)  # set-up runs its own loop
    official = adaptive_sdk.AsyncAdaptive(base_url=server.base_url, api_key=server.api_key)
    created = await official.ab_tests.create(f"oa-{unique}", s.metrics["score"], s.models, use_case=s.use_case)
    assert created.status.value == "WARMUP"
    got = await official.ab_tests.get(f"oa-{unique}")
    assert got.metric.key == s.metrics["score"] and [v.variant.key for v in got.report.variants] == s.models
    assert [c.key for c in await official.ab_tests.list(active=True, use_case=s.use_case)] == [f"oa-{unique}"]
    assert await official.ab_tests.cancel(f"oa-{unique}") == f"oa-{unique}"
