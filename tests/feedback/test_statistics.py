"""Feedback statistics computed in SQL: per use case, key and model; preferences per model pair."""

from __future__ import annotations

import asyncio
import statistics as pystats
import uuid

import pytest

from adaptive_engine.server.db.engine import create_engine, create_sessionmaker
from adaptive_engine.server.db.models import Feedback, Metric, UseCase
from adaptive_engine.server.db.session import unit_of_work
from adaptive_engine.server.domains.feedback import statistics
from adaptive_engine.server.domains.interactions.ingest import Rows, insert_rows
from adaptive_engine.server.domains.interactions.service import NewCompletion, record_completions
from tests.interactions.helpers import graphql, msgs, seed_models

STATS = """query($f: FeedbackStatisticsFilter!) {
  feedbackStatistics(filter: $f) { metric { key } model count sum sumOfSquares mean variance min max }
  preferenceStatistics(filter: $f) { metric { key } modelA modelB winsA winsB tiesGood tiesBad ties total }
}"""


def test_metric_and_preference_statistics(client, server, unique: str) -> None:
    uc, a, b = f"st-{unique}", f"a-{unique}", f"b-{unique}"
    client.use_cases.create(uc)
    client.set_default_use_case(uc)
    seed_models(server, a, b)
    client.feedback.register_key(f"score-{unique}", kind="scalar")
    client.feedback.register_key(f"pref-{unique}", kind="bool")
    values = {a: [1.0, 2.0, 4.0, 7.0], b: [3.0]}
    ids: dict[str, list[str]] = {a: [], b: []}
    for model, vals in values.items():
        for v in vals:
            logged = client.interactions.create(
                messages=msgs(),
                completion=f"{model}:{v}",
                model=model,
                feedbacks=[{"feedback_key": f"score-{unique}", "value": v}],
            )
            ids[model].append(logged.completion_id)
    # b wins once, a wins three times (logged with a on either side), ties: 1 good, 2 bad.
    outcomes = [
        (ids[a][0], ids[b][0], None),
        (ids[a][1], ids[b][0], None),
        (ids[a][2], ids[b][0], None),
        (ids[b][0], ids[a][3], None),
        (ids[a][0], ids[b][0], "good"),
        (ids[b][0], ids[a][1], "bad"),
        (ids[a][2], ids[b][0], "bad"),
    ]
    for preferred, other, tied in outcomes:
        client.feedback.log_preference(f"pref-{unique}", preferred, other, tied=tied)

    data = graphql(server, STATS, {"f": {"useCase": uc}})["data"]
    by_model = {s["model"]: s for s in data["feedbackStatistics"]}
    assert set(by_model) == {a, b}
    sa = by_model[a]
    assert sa["count"] == 4 and sa["sum"] == 14.0 and sa["sumOfSquares"] == 70.0
    assert sa["mean"] == pytest.approx(3.5) and sa["variance"] == pytest.approx(pystats.variance(values[a]))
    assert (sa["min"], sa["max"]) == (1.0, 7.0)
    assert by_model[b]["count"] == 1 and by_model[b]["variance"] is None
    [pair] = data["preferenceStatistics"]
    assert (pair["modelA"], pair["modelB"]) == tuple(sorted((a, b)))
    wins = {pair["modelA"]: pair["winsA"], pair["modelB"]: pair["winsB"]}
    assert wins == {a: 3, b: 1}
    assert (pair["tiesGood"], pair["tiesBad"], pair["ties"], pair["total"]) == (1, 2, 3, 7)

    # Narrowed to one model, and pooled over models.
    only_b = graphql(server, STATS, {"f": {"useCase": uc, "models": [b], "metric": f"score-{unique}"}})["data"]
    assert [s["model"] for s in only_b["feedbackStatistics"]] == [b]
    assert only_b["preferenceStatistics"] == []
    pooled = graphql(server, STATS, {"f": {"useCase": uc, "byModel": False, "metric": f"score-{unique}"}})["data"]
    [all_models] = pooled["feedbackStatistics"]
    assert all_models["model"] is None and all_models["count"] == 5
    assert all_models["variance"] == pytest.approx(pystats.variance(values[a] + values[b]))
    # Unknown use case or key.
    missing = graphql(server, STATS, {"f": {"useCase": f"nope-{unique}"}})
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"


def test_statistics_service_filters_by_ab_campaign(client, server, unique: str) -> None:
    """The reusable service function (A/B tests read it) on completions recorded by record_completions."""
    uc = f"ab-{unique}"
    client.use_cases.create(uc)
    client.feedback.register_key(f"ab-score-{unique}", kind="scalar")
    campaign = uuid.uuid4()

    async def run() -> tuple[list, list]:
        engine = create_engine(server.settings.resolved_database_url)
        try:
            maker = create_sessionmaker(engine)
            async with unit_of_work(maker) as session:
                from sqlalchemy import select

                use_case = (await session.execute(select(UseCase).where(UseCase.key == uc))).scalar_one()
                metric = (await session.execute(select(Metric).where(Metric.key == f"ab-score-{unique}"))).scalar_one()
                served = [
                    NewCompletion(
                        use_case_id=use_case.id,
                        messages=msgs(),
                        completion=str(i),
                        model_key=f"arm{i % 2}",
                        ab_campaign_id=campaign if i < 6 else None,
                    )
                    for i in range(10)
                ]
                ids = await record_completions(None, served, session=session)
                rows = Rows()
                for i, cid in enumerate(ids):
                    rows.add(
                        Feedback,
                        {
                            "completion_id": cid,
                            "metric_id": metric.id,
                            "use_case_id": use_case.id,
                            "value": float(i),
                            "reason": None,
                            "details": None,
                            "user_ref": None,
                        },
                    )
                await insert_rows(session, rows)
            async with maker() as session:
                flt = statistics.StatsFilter(use_case_id=use_case.id, metric_id=metric.id, ab_campaign_id=campaign)
                return await statistics.metric_statistics(session, flt), await statistics.metric_statistics(
                    session, statistics.StatsFilter(use_case_id=use_case.id)
                )
        finally:
            await engine.dispose()

    in_campaign, everything = asyncio.run(run())
    by_arm = {s.model: s for s in in_campaign}
    assert (by_arm["arm0"].count, by_arm["arm0"].sum) == (3, 0.0 + 2 + 4)
    assert (by_arm["arm1"].count, by_arm["arm1"].sum) == (3, 1.0 + 3 + 5)
    assert by_arm["arm1"].variance == pytest.approx(4.0)
    assert sum(s.count for s in everything) == 10
