"""UseCase.activity / activityTimeseries and Model.activity: traffic per time bucket and per model, from the
hourly roll-ups and the rows at the range's edges, on both databases."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk.errors import APIError, NotFoundError, ValidationError
from tests.enforcement import gql
from tests.identity.helpers import user_client
from tests.inference.fixtures import API_KEY

SERIES = """query($uc: IdOrKey!, $input: ActivityTimeseriesInput!) {
  useCase(idOrKey: $uc) { activityTimeseries(input: $input) {
    modelKey model { key } timeBuckets interactions promptTokens completionTokens latencyMeanMs latencyMaxMs errors } }
}"""
TOTALS = """query($uc: IdOrKey!, $range: TimeRange) {
  useCase(idOrKey: $uc) { activity(timerange: $range) {
    interactions { value perSecond trend } feedbacks { value trend } errors { value trend } } }
}"""
MODEL_TOTALS = """query($m: IdOrKey!) { model(idOrKey: $m) { activity { interactions { value } feedbacks { value } } } }"""

HOUR = 3600
# 10:00 UTC on a Monday; the range asked for below runs from 10:30 to 13:15.
T0 = datetime(2026, 3, 30, 10, tzinfo=timezone.utc)


def _series(client: Adaptive, use_case: str, **input_: object) -> list[dict]:
    return gql(client, SERIES, {"uc": use_case, "input": input_})["useCase"]["activityTimeseries"]


@pytest.fixture
def world(client: Adaptive, unique: str) -> dict:
    """Logged interactions at 10:10 and 13:20 (outside the range), 10:40 and 13:05 (partial edge hours, read
    from the rows), 11:20 and 12:59 (whole hours, read from the roll-ups); one feedback each."""
    use_case, key = f"act-{unique}", f"act-key-{unique}"
    client.use_cases.create(key=use_case)
    for model in ("a", "b"):
        client.models.add_external(name=f"{model}-{unique}", key=f"{model}-{unique}", external_model_id="x", api_key="k",
                                   provider="open_ai", endpoint="http://127.0.0.1:9/v1")
        client.models.attach(f"{model}-{unique}", use_case=use_case)
    client.feedback.register_key(key, kind="scalar")
    client.feedback.link(key, use_case=use_case)
    logged = [(10, 10, "a", 9.0), (10, 40, "a", 1.0), (11, 20, "b", 2.0), (12, 59, "a", 4.0), (13, 5, "b", 8.0),
              (13, 20, "a", -5.0)]
    for hour, minute, model, value in logged:
        at = T0.replace(hour=hour, minute=minute)
        client.interactions.create(messages=[{"role": "user", "content": "q"}], completion="a", model=f"{model}-{unique}",
                                   use_case=use_case, created_at=at.isoformat(),
                                   feedbacks=[{"feedback_key": key, "value": value}])
    start = int(T0.timestamp())
    return {"use_case": use_case, "key": key, "unique": unique, "start": start,
            "range": {"from": start + 30 * 60, "to": start + 3 * HOUR + 15 * 60}}


def test_hourly_series_per_model_counts_only_the_range(client: Adaptive, world: dict) -> None:
    series = _series(client, world["use_case"], interval="HOUR", timerange=world["range"], byModel=True)
    u, start = world["unique"], world["start"]
    assert [s["modelKey"] for s in series] == [f"a-{u}", f"b-{u}"] and series[0]["model"] == {"key": f"a-{u}"}
    a, b = series
    assert a["timeBuckets"] == [start, start + HOUR, start + 2 * HOUR, start + 3 * HOUR]
    assert a["interactions"] == [1, 0, 1, 0] and b["interactions"] == [0, 1, 0, 1]
    # Logged interactions carry no tokens or latency.
    assert a["promptTokens"] == [0, 0, 0, 0] and a["latencyMeanMs"] == [None] * 4 and a["errors"] == [0] * 4
    (merged,) = _series(client, world["use_case"], interval="DAY", timerange=world["range"])
    assert merged["modelKey"] is None and merged["interactions"] == [4]
    (everything,) = _series(client, world["use_case"], interval="DAY")  # no range: from the first traffic to now
    assert everything["timeBuckets"][0] == start - 10 * HOUR and sum(everything["interactions"]) == 6


def test_window_totals_and_trend(client: Adaptive, world: dict) -> None:
    start = world["start"]
    data = gql(client, TOTALS, {"uc": world["use_case"], "range": world["range"]})["useCase"]["activity"]
    assert data["interactions"]["value"] == 4 and data["feedbacks"]["value"] == 4 and data["errors"]["value"] == 0
    assert data["interactions"]["perSecond"] == pytest.approx(4 / (2 * HOUR + 45 * 60))
    # The window before (07:45 to 10:30) holds the 10:10 interaction: 4 against 1.
    assert data["interactions"]["trend"] == pytest.approx(3.0) and data["errors"]["trend"] is None
    later = {"from": start + 4 * HOUR, "to": start + 6 * HOUR}  # after all of it: 0 against 13:20's one
    data = gql(client, TOTALS, {"uc": world["use_case"], "range": later})["useCase"]["activity"]
    assert data["interactions"] == {"value": 0, "perSecond": 0.0, "trend": -1.0}


def test_served_traffic_tokens_latency_and_errors(client: Adaptive, unique: str, upstream) -> None:
    use_case = f"act-srv-{unique}"
    client.use_cases.create(key=use_case)
    for key, remote in ((f"ok-{unique}", "gpt-test"), (f"broken-{unique}", "broken")):
        client.models.add_external(name=key, key=key, external_model_id=remote, api_key=API_KEY, provider="open_ai",
                                   endpoint=upstream.base_url)
        client.models.attach(key, wait=True, use_case=use_case, make_default=key.startswith("ok"))
    for _ in range(3):
        client.chat.create(messages=[{"role": "user", "content": "hello"}], use_case=use_case)
    list(client.chat.create(messages=[{"role": "user", "content": "a b"}], use_case=use_case, stream=True,
                            stream_include_usage=True))
    for _ in range(2):
        with pytest.raises(APIError):
            client.chat.create(messages=[{"role": "user", "content": "hi"}], use_case=use_case, model=f"broken-{unique}")
    series = _series(client, use_case, interval="HOUR", byModel=True)
    by_model = {s["modelKey"]: s for s in series}
    ok, broken = by_model[f"ok-{unique}"], by_model[f"broken-{unique}"]
    # Errors are counted as the writer commits them: the served answers were committed before the reads above.
    assert sum(ok["interactions"]) == 4 and sum(ok["promptTokens"]) == 20 and sum(ok["completionTokens"]) == 3 * 3 + 3
    assert ok["latencyMeanMs"][-1] > 0 and ok["latencyMaxMs"][-1] >= ok["latencyMeanMs"][-1]
    assert sum(broken["errors"]) == 2 and sum(broken["interactions"]) == 0 and broken["latencyMeanMs"][-1] is None
    totals = gql(client, TOTALS, {"uc": use_case, "range": None})["useCase"]["activity"]
    assert totals["interactions"]["value"] == 4 and totals["errors"]["value"] == 2
    model = gql(client, MODEL_TOTALS, {"m": f"ok-{unique}"})["model"]["activity"]
    assert model == {"interactions": {"value": 4}, "feedbacks": {"value": 0}}


def test_feedback_statistics_of_a_range_count_it_exactly(client: Adaptive, world: dict) -> None:
    """feedbackStatistics reads the same roll-ups and edge rows: the 4 values inside the range, by model."""
    query = """query($f: FeedbackStatisticsFilter!) { feedbackStatistics(filter: $f) {
      model count sum sumOfSquares mean variance min max } }"""
    rows = gql(client, query, {"f": {"useCase": world["use_case"], "timerange": world["range"]}})["feedbackStatistics"]
    by_model = {r["model"]: r for r in rows}
    a, b = by_model[f"a-{world['unique']}"], by_model[f"b-{world['unique']}"]
    assert (a["count"], a["sum"], a["sumOfSquares"], a["min"], a["max"]) == (2, 5.0, 17.0, 1.0, 4.0)
    assert a["mean"] == 2.5 and a["variance"] == pytest.approx(4.5)
    assert (b["count"], b["sum"], b["min"], b["max"]) == (2, 10.0, 2.0, 8.0)
    (pooled,) = gql(client, query, {"f": {"useCase": world["use_case"], "byModel": False}})["feedbackStatistics"]
    assert (pooled["count"], pooled["sum"], pooled["min"], pooled["max"]) == (6, 19.0, -5.0, 9.0)


def test_bad_inputs_are_refused(client: Adaptive, world: dict) -> None:
    uc, start = world["use_case"], world["start"]
    with pytest.raises(ValidationError, match="UTC"):
        _series(client, uc, interval="DAY", timezone="Europe/Paris")
    with pytest.raises(ValidationError, match="buckets"):
        _series(client, uc, interval="HOUR", timerange={"from": 0, "to": start})
    with pytest.raises(ValidationError, match="ends before"):
        _series(client, uc, interval="DAY", timerange={"from": start, "to": start - HOUR})
    with pytest.raises(ValidationError, match="ends before"):
        gql(client, TOTALS, {"uc": uc, "range": {"from": start, "to": start - HOUR}})
    with pytest.raises(ValidationError):
        _series(client, uc, interval="FORTNIGHT")


def test_readers_only(client: Adaptive, server, world: dict) -> None:
    u = world["unique"]
    client.teams.create(key=f"act-other-{u}")
    viewer = user_client(client, server, f"act-viewer-{u}@example.com", [("default", "viewer")])
    outsider = user_client(client, server, f"act-out-{u}@example.com", [(f"act-other-{u}", "editor")])
    assert _series(viewer, world["use_case"], interval="DAY", timerange=world["range"])[0]["interactions"] == [4]
    with pytest.raises(NotFoundError):
        _series(outsider, world["use_case"], interval="DAY")
    # A model's activity counts only the use cases the caller can read.
    rng = {"from": world["start"] - HOUR, "to": world["start"] + 5 * HOUR}
    query = """query($m: IdOrKey!, $r: TimeRange) { model(idOrKey: $m) { activity(timerange: $r) { interactions { value } } } }"""
    assert gql(viewer, query, {"m": f"a-{u}", "r": rng})["model"]["activity"]["interactions"]["value"] == 4
    assert gql(outsider, query, {"m": f"a-{u}", "r": rng})["model"]["activity"]["interactions"]["value"] == 0
