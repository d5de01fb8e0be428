"""/metrics (issue 16): every series family driven by real traffic through a live server (both databases), then
read back from a scrape: LLM calls (tokens, latency, time to first token, inter-token latency), the gateway's
errors, retries and fallbacks, the ingest writer, GraphQL operations by (bounded) name, jobs, A/B evaluations,
notification deliveries; and the local batching engine on the bundled model."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from adaptive_engine import Adaptive
from adaptive_engine.server.observability.metrics import MAX_GRAPHQL_OPERATIONS
from tests.ab_tests.support import MIN_OBS, add_traffic, make_setup
from tests.ab_tests.test_evaluation import bools
from tests.inference.gateway_world import Gateway, build
from tests.integrations.receivers import HttpReceiver
from tests.integrations.test_integrations import _job_payload, _wait_status, _webhook
from tests.jobs import recipes
from tests.jobs.helpers import upload, wait_for
from tests.support import LiveServer, make_settings, private_postgres_database

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def observed(database: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of its own (its counters start at zero): the A/B evaluator runs when the test says, and
    notifications go out at once."""
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(private_postgres_database()) if database else None
        settings = make_settings(
            tmp_path_factory.mktemp("observed"),
            url,
            ab_test_evaluation_interval_s=0,
            ab_test_min_observations=MIN_OBS,
            notify_poll_interval_s=0.05,
            notify_backoff_s=0.05,
        )
        with LiveServer(settings) as live:
            yield live


@pytest.fixture(scope="module")
def world(observed: LiveServer, upstream) -> Iterator[Gateway]:  # noqa: ANN001
    gw = build(observed, upstream)
    yield gw
    gw.admin.close()


def scrape(server: LiveServer) -> dict[tuple[str, frozenset], float]:
    text = httpx.get(f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {server.api_key}"}).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    """The sum of ``name`` over the series whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, got), v in samples.items() if n == name and wanted <= got)


def test_chat_calls_count_tokens_and_latencies(world: Gateway) -> None:
    before = scrape(world.server)
    model, use_case = world.k("solo"), world.k("uc1")
    client = world.openai()
    answer = client.chat.completions.create(model=use_case, messages=HI)
    chunks = list(
        client.chat.completions.create(model=use_case, messages=HI, stream=True, stream_options={"include_usage": True})
    )
    streamed = next(c.usage for c in chunks if c.usage is not None)
    after = scrape(world.server)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    served = {"model": model, "use_case": use_case}
    assert grew("adaptive_prompt_tokens_total", **served) == answer.usage.prompt_tokens + streamed.prompt_tokens
    assert grew("adaptive_generation_tokens_total", **served) == (
        answer.usage.completion_tokens + streamed.completion_tokens
    )
    assert grew("adaptive_request_success_total", finish_reason="stop", **served) == 2
    assert grew("adaptive_e2e_request_latency_seconds_count", stream="false", **served) == 1
    assert grew("adaptive_e2e_request_latency_seconds_count", stream="true", **served) == 1
    assert grew("adaptive_time_to_first_token_seconds_count", **served) == 1
    assert grew("adaptive_inter_token_latency_seconds_count", **served) == 1  # once per stream, not per token
    assert grew("adaptive_e2e_request_latency_seconds_sum", **served) > 0
    assert grew("adaptive_http_requests_total", route="/chat/completions", status="200") == 2


def test_upstream_errors_retries_and_fallbacks(world: Gateway, upstream) -> None:  # noqa: ANN001
    flaky = world.k(f"flaky{uuid.uuid4().hex[:4]}")
    world.external(flaky, external_model_id=f"fail503x1-{flaky}", endpoint=upstream.base_url)
    world.attach(flaky, world.k("uc1"))
    broken = world.k(f"broken{uuid.uuid4().hex[:4]}")
    world.external(broken, external_model_id=f"fail500x99-{broken}", endpoint=upstream.base_url)
    world.attach(broken, world.k("uc1"))
    world.admin.models.update_gateway_config(broken, max_retries=0, fallbacks=[world.k("solo")])
    lonely = world.k(f"lonely{uuid.uuid4().hex[:4]}")
    world.external(lonely, external_model_id=f"fail400x99-{lonely}", endpoint=upstream.base_url)
    world.attach(lonely, world.k("uc1"))
    client = world.openai()

    client.chat.completions.create(model=f"{world.k('uc1')}/{flaky}", messages=HI)  # a 503, then served
    client.chat.completions.create(model=f"{world.k('uc1')}/{broken}", messages=HI)  # 500: the fallback serves
    with pytest.raises(openai.APIStatusError):  # an upstream 400 is the request's fault: no retry, no fallback
        client.chat.completions.create(model=f"{world.k('uc1')}/{lonely}", messages=HI)
    after = scrape(world.server)

    assert value(after, "adaptive_upstream_retries_total", model=flaky, error="503") == 1
    assert value(after, "adaptive_upstream_errors_total", model=broken, error="500") == 1
    assert value(after, "adaptive_gateway_fallbacks_total", model=broken, fallback=world.k("solo")) == 1
    assert value(after, "adaptive_request_success_total", model=world.k("solo"), use_case=world.k("uc1")) >= 1
    assert value(after, "adaptive_upstream_errors_total", model=lonely, error="400") == 1
    assert value(after, "adaptive_upstream_retries_total", model=lonely) == 0
    assert value(after, "adaptive_request_failure_total", model=lonely, use_case=world.k("uc1")) == 1


def test_ingest_writer_series(world: Gateway) -> None:
    before = scrape(world.server)
    client = world.openai()
    for _ in range(3):
        client.chat.completions.create(model=world.k("uc1"), messages=HI)
    world.server.settle()
    after = scrape(world.server)
    commits = value(after, "adaptive_ingest_commit_batch_size_count") - value(
        before, "adaptive_ingest_commit_batch_size_count"
    )
    merged = value(after, "adaptive_ingest_commit_batch_size_sum") - value(
        before, "adaptive_ingest_commit_batch_size_sum"
    )
    rows = value(after, "adaptive_ingest_commit_rows_sum") - value(before, "adaptive_ingest_commit_rows_sum")
    assert 1 <= commits <= 3 and merged == 3 and rows >= 3  # three logged answers, in one to three commits
    assert (
        value(after, "adaptive_ingest_queue_lag_seconds_count")
        - value(before, "adaptive_ingest_queue_lag_seconds_count")
        == commits
    )
    assert ("adaptive_ingest_queue_depth", frozenset()) in after


def test_graphql_requests_by_operation_name(observed: LiveServer) -> None:
    url, auth = f"{observed.base_url}/api/graphql", {"Authorization": f"Bearer {observed.api_key}"}
    httpx.post(url, json={"query": "query ListUseCases { useCases { key } }"}, headers=auth).raise_for_status()
    httpx.post(url, json={"query": "{ __typename }"}, headers=auth).raise_for_status()
    httpx.post(url, json={"query": "query Broken { nothingHere }"}, headers=auth)
    httpx.post(url, json={"query": "{ __typename }", "operationName": "x y\n"}, headers=auth)
    samples = scrape(observed)
    assert value(samples, "adaptive_graphql_requests_total", operation="ListUseCases", type="query", status="ok") == 1
    assert value(samples, "adaptive_graphql_requests_total", operation="anonymous", status="ok") >= 1
    assert value(samples, "adaptive_graphql_requests_total", operation="Broken", status="error") == 1
    assert value(samples, "adaptive_graphql_requests_total", operation="other", status="error") == 1
    assert value(samples, "adaptive_graphql_request_duration_seconds_count", operation="ListUseCases") == 1
    assert value(samples, "adaptive_http_requests_total", route="/api/graphql") >= 4
    assert value(samples, "adaptive_http_requests_total", route="unmatched", method="POST") == 0

    # Names are the clients': past the cap, new ones share one label.
    with httpx.Client(headers=auth) as http:
        for i in range(MAX_GRAPHQL_OPERATIONS + 5):
            http.post(url, json={"query": f"query Op{i} {{ __typename }}"}).raise_for_status()
    samples = scrape(observed)
    names = {dict(labels)["operation"] for (name, labels) in samples if name == "adaptive_graphql_requests_total"}
    assert len(names - {"anonymous", "other"}) == MAX_GRAPHQL_OPERATIONS
    assert value(samples, "adaptive_graphql_requests_total", operation="other", status="ok") >= 5


def test_jobs_by_state_and_duration(observed: LiveServer, tmp_path: Path) -> None:
    with Adaptive(observed.base_url, api_key=observed.api_key) as client:
        key = f"jobs-{uuid.uuid4().hex[:6]}"
        client.use_cases.create(key=key)
        client.set_default_use_case(key)
        upload(client, tmp_path, recipes.FAILING, "failing")
        job = wait_for(client, client.jobs.run("failing", num_gpus=0).id)
    assert job.status == "FAILED"
    samples = scrape(observed)
    assert value(samples, "adaptive_jobs_total", status="RUNNING") >= 1
    assert value(samples, "adaptive_jobs_total", status="FAILED") >= 1
    assert value(samples, "adaptive_job_duration_seconds_count", status="FAILED") >= 1
    assert value(samples, "adaptive_job_duration_seconds_sum", status="FAILED") > 0


def test_jobs_canceled_through_the_api_are_counted(observed: LiveServer, tmp_path: Path) -> None:
    before = scrape(observed)
    with Adaptive(observed.base_url, api_key=observed.api_key) as client:
        key = f"cancel-{uuid.uuid4().hex[:6]}"
        client.use_cases.create(key=key)
        client.set_default_use_case(key)
        upload(client, tmp_path, recipes.SLEEPER, "sleeper")
        running = wait_for(client, client.jobs.run("sleeper", num_gpus=0).id, {"RUNNING"})
        assert client.jobs.cancel(running.id).status == "CANCELED"
        # One canceled at once (still queued, or just claimed): counted all the same.
        assert client.jobs.cancel(client.jobs.run("sleeper", num_gpus=0).id).status == "CANCELED"
    samples = scrape(observed)
    grew = value(samples, "adaptive_jobs_total", status="CANCELED") - value(
        before, "adaptive_jobs_total", status="CANCELED"
    )
    assert grew == 2
    timed = value(samples, "adaptive_job_duration_seconds_count", status="CANCELED") - value(
        before, "adaptive_job_duration_seconds_count", status="CANCELED"
    )
    assert timed >= 1  # the running one's run time


def test_ab_test_evaluations_and_decisions(observed: LiveServer) -> None:
    evaluator = observed.app.state.ab_tests
    before = scrape(observed)
    with Adaptive(observed.base_url, api_key=observed.api_key) as client:
        unique = uuid.uuid4().hex[:6]
        s = make_setup(observed, client, unique)
        client.ab_tests.create(f"win-{unique}", s.metrics["ok"], s.models, auto_deploy=False, use_case=s.use_case)
        add_traffic(
            observed, f"win-{unique}", s.metrics["ok"], {s.model_ids[0]: bools(0.2, 60), s.model_ids[1]: bools(0.9, 60)}
        )
        # The server's own evaluator, one pass, in its loop.
        asyncio.run_coroutine_threadsafe(evaluator.run_once(), evaluator.loop).result(60)
        assert client.ab_tests.get(f"win-{unique}").status == "DONE"
    after = scrape(observed)
    assert value(after, "adaptive_ab_test_evaluations_total") - value(before, "adaptive_ab_test_evaluations_total") == 1
    assert value(after, "adaptive_ab_test_decisions_total") - value(before, "adaptive_ab_test_decisions_total") == 1


def test_notification_deliveries(observed: LiveServer) -> None:
    with HttpReceiver() as receiver, Adaptive(observed.base_url, api_key=observed.api_key, max_retries=0) as client:
        team = client.teams.create(key=f"obs-{uuid.uuid4().hex[:6]}").key
        hook = client.integrations.create(team, _webhook(receiver.url))
        receiver.fail_with = [503]
        client.integrations.test_notification(
            {"topic": "job.completed", "scope": {"team": team}, "payload": _job_payload()}
        )
        _wait_status(client, hook.id, "DELIVERED")
    samples = scrape(observed)
    assert value(samples, "adaptive_notification_deliveries_total", provider="webhook", outcome="retrying") >= 1
    assert value(samples, "adaptive_notification_deliveries_total", provider="webhook", outcome="delivered") >= 1
    assert value(samples, "adaptive_notification_delivery_duration_seconds_count", provider="webhook") >= 2


def test_metrics_stay_protected(observed: LiveServer) -> None:
    assert httpx.get(f"{observed.base_url}/metrics").status_code == 401


def test_local_batching_engine(served) -> None:  # noqa: ANN001
    """The bundled model's engine: concurrent requests share decode steps; its load is read at each scrape."""
    client = openai.OpenAI(base_url=served.api_url, api_key=served.server.api_key, max_retries=0)

    def ask(i: int) -> int:
        answer = client.chat.completions.create(
            model=served.use_case, messages=[{"role": "user", "content": f"count to {i}"}], max_tokens=8
        )
        assert answer.usage is not None
        return answer.usage.completion_tokens

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        generated = list(pool.map(ask, range(4)))
    samples = scrape(served.server)
    model = {"model": served.chat_model}
    # A sampled answer may stop before max_tokens: the engine ran at least as many steps as the longest answer.
    assert value(samples, "adaptive_local_decode_steps_total", **model) >= max(generated)
    assert value(samples, "adaptive_local_generation_tokens_total", **model) >= sum(generated)
    assert value(samples, "adaptive_local_max_batch_rows", **model) >= 1
    # Nothing in flight now: the live gauges read zero.
    assert value(samples, "adaptive_local_num_requests_running", **model) == 0
    assert value(samples, "adaptive_local_num_requests_waiting", **model) == 0
    assert ("adaptive_local_batch_rows", frozenset(model.items())) in samples
    assert value(samples, "adaptive_generation_tokens_total", **model) >= sum(generated)
