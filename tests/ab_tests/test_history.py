"""The evaluation history of an A/B test: each evaluation with new feedback or a new phase or decision keeps
its estimates (Abcampaign.history), the interval narrows as feedback grows, and the history stays bounded."""

from __future__ import annotations

import itertools

from sqlalchemy import func, select

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.domains.ab_tests import history
from tests.ab_tests.support import MIN_OBS, add_traffic, evaluate, in_db, make_setup
from tests.ab_tests.test_evaluation import bools
from tests.enforcement import gql

QUERY = """query($key: IdOrKey!) { abCampaign(idOrKey: $key) {
  status report { alpha minFeedbacksPerVariant }
  history { at feedbacks pValue warmingUp decision winner { key } sampleRatioPValue
            variants { variant { key } feedbacks mean interval { start middle end } }
            pairs { variantA { key } variantB { key } estimate intervalStart intervalEnd pValue } } } }"""


def _campaign(client, key: str) -> dict:
    return gql(client, QUERY, {"key": key})["abCampaign"]


def test_history_keeps_each_new_estimate_until_the_decision(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique)
    key = f"h-{unique}"
    ab_client.ab_tests.create(key, s.metrics["ok"], s.models, auto_deploy=False, use_case=s.use_case)
    a, b = s.model_ids
    # Warm-up, then three rounds of more feedback, B better than A: each round adds an evaluation.
    add_traffic(ab_server, key, s.metrics["ok"], {a: bools(0.5, MIN_OBS // 2), b: bools(0.5, MIN_OBS // 2)})
    evaluate(ab_server)
    evaluate(ab_server)  # nothing new: nothing kept
    data = _campaign(ab_client, key)
    assert data["report"] == {"alpha": 0.05, "minFeedbacksPerVariant": MIN_OBS}
    (first,) = data["history"]
    assert first["warmingUp"] and first["decision"] == "continue" and first["feedbacks"] == MIN_OBS
    assert [v["variant"]["key"] for v in first["variants"]] == s.models and first["variants"][0][
        "feedbacks"
    ] == MIN_OBS // 2
    for _ in range(3):
        add_traffic(ab_server, key, s.metrics["ok"], {a: bools(0.45, 20), b: bools(0.6, 20)})
        evaluate(ab_server)
    data = _campaign(ab_client, key)
    assert data["status"] == "IN_PROGRESS"
    kept = data["history"]
    assert [h["feedbacks"] for h in kept] == [MIN_OBS, MIN_OBS + 40, MIN_OBS + 80, MIN_OBS + 120]
    assert [h["at"] for h in kept] == sorted(h["at"] for h in kept)
    widths = [p["intervalEnd"] - p["intervalStart"] for h in kept[1:] for p in h["pairs"]]
    assert widths == sorted(widths, reverse=True) and widths[-1] < widths[0]  # the interval narrows
    assert all(h["pValue"] >= later["pValue"] for h, later in itertools.pairwise(kept))  # a running minimum
    # A clear difference decides: the last evaluation says so.
    add_traffic(ab_server, key, s.metrics["ok"], {a: bools(0.1, 60), b: bools(0.95, 60)})
    evaluate(ab_server)
    data = _campaign(ab_client, key)
    last = data["history"][-1]
    assert data["status"] == "DONE" and last["decision"] == "winner" and last["winner"] == {"key": s.models[1]}
    assert last["pValue"] <= 0.05 and last["pairs"][0]["intervalStart"] > 0
    evaluate(ab_server)  # an ended test is not evaluated again
    assert len(_campaign(ab_client, key)["history"]) == 5


def test_history_is_thinned_evenly_past_its_bound(ab_server, ab_client, unique: str, monkeypatch) -> None:
    monkeypatch.setattr(history, "MAX_KEPT", 4)  # the evaluator of these tests runs in this process
    s = make_setup(ab_server, ab_client, unique)
    key = f"t-{unique}"
    ab_client.ab_tests.create(key, s.metrics["score"], s.models, use_case=s.use_case)
    a, b = s.model_ids
    for _ in range(7):
        add_traffic(ab_server, key, s.metrics["score"], {a: [0.5, 0.6], b: [0.5, 0.6]})
        evaluate(ab_server)

    async def count(session) -> int:
        campaign = (await session.execute(select(orm.AbCampaign.id).where(orm.AbCampaign.key == key))).scalar_one()
        return (
            await session.execute(
                select(func.count()).select_from(orm.AbEvaluation).where(orm.AbEvaluation.campaign_id == campaign)
            )
        ).scalar_one()

    assert in_db(ab_server, count) <= 4
    kept = [h["feedbacks"] for h in _campaign(ab_client, key)["history"]]
    assert kept[0] == 4 and kept[-1] == 28 and kept == sorted(kept)  # the first and the latest stay
