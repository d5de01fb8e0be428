"""Routing of a use case's traffic into its campaign: split, uniform arms, stickiness, forcing."""

from __future__ import annotations

import random
import uuid

import pytest

from adaptive_engine.server.domains.ab_tests.routing import AbRouter
from adaptive_engine.server.domains.ab_tests.statistics import sample_ratio_mismatch
from adaptive_engine.server.errors import InvalidInput, NotFound
from tests.ab_tests.support import in_db, make_setup


def routes(server, use_case_id, calls):
    """Run route_request for each kwargs dict in ``calls``; (campaign key, model key) or None each."""

    async def work(session):
        out = []
        router = AbRouter(rng=random.Random(11))
        for kwargs in calls:
            route = await router.route(session, use_case_id, **kwargs)
            out.append(None if route is None else (route.campaign_key, route.model_key))
        return out

    return in_db(server, work)


def test_sticky_uniform_split(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique, n_models=3)
    key = f"r-{unique}"
    ab_client.ab_tests.create(key, s.metrics["ok"], s.models, traffic_split=0.3, use_case=s.use_case)
    sessions = [uuid.UUID(int=i + 1) for i in range(1000)]
    first = routes(ab_server, s.use_case_id, [{"session_id": sid} for sid in sessions])
    # the same session always gets the same answer
    again = routes(ab_server, s.use_case_id, [{"session_id": sid} for sid in sessions[:100]])
    assert again == first[:100]
    joined = [r for r in first if r is not None]
    assert 0.25 < len(joined) / len(sessions) < 0.35
    assert {r[0] for r in joined} == {key}
    counts = [sum(1 for r in joined if r[1] == m) for m in s.models]
    assert not sample_ratio_mismatch(counts).flagged and min(counts) > 0
    # without a session the draw is per request
    free = routes(ab_server, s.use_case_id, [{} for _ in range(300)])
    assert 0.22 < sum(r is not None for r in free) / 300 < 0.38


def test_forcing_explicit_models_and_ended_campaigns(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique)
    other = make_setup(ab_server, ab_client, unique + "x")
    key = f"f-{unique}"
    ab_client.ab_tests.create(key, s.metrics["ok"], s.models, traffic_split=0.01, use_case=s.use_case)
    other_key = f"fo-{unique}"
    ab_client.ab_tests.create(other_key, other.metrics["ok"], other.models, use_case=other.use_case)
    forced = routes(ab_server, s.use_case_id, [{"ab_campaign": key, "session_id": uuid.UUID(int=i)} for i in range(60)])
    assert all(r is not None and r[0] == key for r in forced)
    assert {r[1] for r in forced} == set(s.models)
    # an explicit model stays out, unless the request names the campaign and the model is an arm
    assert routes(ab_server, s.use_case_id, [{"model_id": s.model_ids[1]}]) == [None]
    assert routes(ab_server, s.use_case_id, [{"model_id": s.model_ids[1], "ab_campaign": key}]) == [(key, s.models[1])]
    with pytest.raises(InvalidInput, match="not one of the models"):
        routes(ab_server, s.use_case_id, [{"model_id": other.model_ids[0], "ab_campaign": key}])
    with pytest.raises(NotFound):
        routes(ab_server, s.use_case_id, [{"ab_campaign": other_key}])
    with pytest.raises(NotFound):
        routes(ab_server, s.use_case_id, [{"ab_campaign": "no-such-test"}])
    # once ended, the campaign routes nothing and the default model serves
    ab_client.ab_tests.cancel(key)
    assert routes(ab_server, s.use_case_id, [{"ab_campaign": key}, {"session_id": uuid.UUID(int=5)}]) == [None, None]


def test_use_case_without_campaign_routes_nothing(ab_server, ab_client, unique: str) -> None:
    s = make_setup(ab_server, ab_client, unique)
    assert routes(ab_server, s.use_case_id, [{}, {"session_id": uuid.uuid4()}]) == [None, None]
