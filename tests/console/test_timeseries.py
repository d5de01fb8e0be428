"""MetricWithContext.timeseries: a feedback key's values per time bucket, by the database, on both databases."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk.errors import NotFoundError, ValidationError
from tests.enforcement import gql
from tests.identity.helpers import user_client

QUERY = """query($uc: IdOrKey!, $input: TimeseriesInput!) {
  useCase(idOrKey: $uc) { metrics { key timeseries(input: $input) {
    modelKey model { key } timeBuckets count values aggregation intervals { start middle end } } } }
}"""

DAY = 86400


def _series(client: Adaptive, use_case: str, key: str, **input_: object) -> list[dict]:
    data = gql(client, QUERY, {"uc": use_case, "input": input_})
    return next(m["timeseries"] for m in data["useCase"]["metrics"] if m["key"] == key)


@pytest.fixture
def world(client: Adaptive, unique: str) -> dict:
    """Two models' feedback on three days: day 0 (a: 1, 0), day 1 (nothing), day 2 (a: 1; b: 1, 1, 0.5)."""
    use_case, key = f"ts-{unique}", f"ts-key-{unique}"
    client.use_cases.create(key=use_case)
    for model in ("a", "b"):
        client.models.add_external(name=f"{model}-{unique}", key=f"{model}-{unique}", external_model_id="x", api_key="k",
                                   provider="open_ai", endpoint="http://127.0.0.1:9/v1")
        client.models.attach(f"{model}-{unique}", use_case=use_case)
    client.feedback.register_key(key, kind="scalar")
    client.feedback.link(key, use_case=use_case)
    day0 = datetime(2026, 3, 30, tzinfo=timezone.utc)  # a Monday, the last days of a month and quarter
    logged = [(0, "a", 1.0), (0, "a", 0.0), (2, "a", 1.0), (2, "b", 1.0), (2, "b", 1.0), (2, "b", 0.5)]
    for day, model, value in logged:
        at = day0 + timedelta(days=day, hours=10)
        client.interactions.create(messages=[{"role": "user", "content": "q"}], completion="a", model=f"{model}-{unique}",
                                   use_case=use_case, created_at=at.isoformat(),
                                   feedbacks=[{"feedback_key": key, "value": value}])
    # Outside the range asked for below: must not count.
    client.interactions.create(messages=[{"role": "user", "content": "q"}], completion="a", model=f"a-{unique}",
                               use_case=use_case, created_at=(day0 + timedelta(days=30)).isoformat(),
                               feedbacks=[{"feedback_key": key, "value": 0.0}])
    start = int(day0.timestamp())
    return {"use_case": use_case, "key": key, "start": start, "unique": unique,
            "range": {"from": start, "to": start + 3 * DAY - 1}}


def test_daily_series_per_model(client: Adaptive, world: dict) -> None:
    series = _series(client, world["use_case"], world["key"], interval="DAY", timerange=world["range"], byModel=True)
    assert [s["modelKey"] for s in series] == [f"a-{world['unique']}", f"b-{world['unique']}"]
    a, b = series
    assert a["model"] == {"key": f"a-{world['unique']}"} and a["aggregation"] == "AVERAGE"
    start = world["start"]
    assert a["timeBuckets"] == b["timeBuckets"] == [start, start + DAY, start + 2 * DAY]
    assert a["count"] == [2, 0, 1] and a["values"] == [0.5, None, 1.0]
    assert b["count"] == [0, 0, 3] and b["values"][2] == pytest.approx(2.5 / 3)
    # Mean 0.5 of (1, 0): sample variance 0.5, so the 95% interval is 0.5 ± 1.96 * sqrt(0.5 / 2).
    interval = a["intervals"][0]
    assert interval["middle"] == 0.5 and interval["end"] - 0.5 == pytest.approx(1.959964 * 0.5, rel=1e-4)
    assert a["intervals"][1:] == [None, None]  # empty, then a single value


def test_other_intervals_and_aggregations(client: Adaptive, world: dict) -> None:
    uc, key, start = world["use_case"], world["key"], world["start"]
    (whole,) = _series(client, uc, key, interval="WEEK", timerange=world["range"], aggregation="SUM")
    assert whole["timeBuckets"] == [start] and whole["values"] == [4.5] and whole["count"] == [6]
    assert whole["modelKey"] is None and whole["aggregation"] == "SUM"
    # Calendar buckets: March 30 and 31 fall in March (and the first quarter), April 1 in April.
    (monthly,) = _series(client, uc, key, interval="MONTH", timerange=world["range"], aggregation="COUNT")
    assert monthly["count"] == [2, 4] and monthly["values"] == [2.0, 4.0]
    assert monthly["timeBuckets"] == [int(datetime(2026, 3, 1, tzinfo=timezone.utc).timestamp()),
                                      int(datetime(2026, 4, 1, tzinfo=timezone.utc).timestamp())]
    (quarterly,) = _series(client, uc, key, interval="QUARTER", timerange=world["range"])
    assert quarterly["count"] == [2, 4]
    hourly = _series(client, uc, key, interval="HOUR", timerange=world["range"])[0]
    assert len(hourly["timeBuckets"]) == 72 and hourly["count"][10] == 2 and sum(hourly["count"]) == 6
    # No range: from the first value to now, the late value included.
    (all_days,) = _series(client, uc, key, interval="DAY")
    assert all_days["timeBuckets"][0] == start and sum(all_days["count"]) == 7


def test_bad_inputs_are_refused(client: Adaptive, world: dict) -> None:
    uc, key = world["use_case"], world["key"]
    with pytest.raises(ValidationError, match="UTC"):
        _series(client, uc, key, interval="DAY", timezone="Europe/Paris")
    with pytest.raises(ValidationError, match="buckets"):
        _series(client, uc, key, interval="HOUR", timerange={"from": 0, "to": world["start"]})
    with pytest.raises(ValidationError, match="ends before"):
        _series(client, uc, key, interval="DAY", timerange={"from": world["start"], "to": world["start"] - DAY})
    with pytest.raises(ValidationError):
        _series(client, uc, key, interval="FORTNIGHT")


def test_readers_only(client: Adaptive, server, world: dict) -> None:
    u = world["unique"]
    client.teams.create(key=f"ts-other-{u}")
    viewer = user_client(client, server, f"ts-viewer-{u}@example.com", [("default", "viewer")])
    outsider = user_client(client, server, f"ts-out-{u}@example.com", [(f"ts-other-{u}", "editor")])
    assert _series(viewer, world["use_case"], world["key"], interval="DAY", timerange=world["range"])[0]["count"] == [2, 0, 4]
    with pytest.raises(NotFoundError):
        _series(outsider, world["use_case"], world["key"], interval="DAY")
