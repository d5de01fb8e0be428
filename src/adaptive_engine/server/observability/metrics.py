"""The server's Prometheus series (served at /metrics), named in vLLM's style with our prefix; the labels carry
OpenTelemetry's GenAI meaning (``model`` is gen_ai.request.model). docs/observability.md lists them.

Built once per app (``Platform.metrics``) on the app's registry; a component built alone (tests, tools) gets
an unregistered set (``Metrics()``), so nothing needs an "if metrics" branch. Labelled children are looked up
once per label tuple and kept (``prometheus_client``'s ``labels()`` takes a lock and builds a key each call):
the data plane pays a dict lookup per series.

Queue depths and batch sizes of live objects (the ingest queue, the local batching engines) are read when
/metrics is scraped (:class:`LiveReadings`), not maintained per request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

PREFIX = "adaptive_"
# GraphQL operation names are chosen by clients: past this many distinct ones, new names count as "other".
MAX_GRAPHQL_OPERATIONS = 200
ANONYMOUS = "anonymous"
OTHER = "other"

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Time to first token and end-to-end latency of a generation: local CPU models take seconds.
GENERATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 40, 80, 160, 320)
TOKEN_GAP_BUCKETS = (0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1, 2.5, 5)
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048)
JOB_BUCKETS = (1, 5, 15, 60, 300, 900, 1800, 3600, 3 * 3600, 12 * 3600, 24 * 3600)


class Series:
    """A metric family and its labelled children, each made once (thread-safe: the batching engines and
    notification sender may call from other threads)."""

    __slots__ = ("family", "_children", "_lock")

    def __init__(self, family: Any, labelled: bool) -> None:
        self.family = family
        # A family without labels is its own only child.
        self._children: dict[tuple[str, ...], Any] = {} if labelled else {(): family}
        self._lock = threading.Lock()

    def __call__(self, *labels: str) -> Any:
        child = self._children.get(labels)
        if child is None:
            with self._lock:
                child = self._children.get(labels)
                if child is None:
                    child = self._children[labels] = self.family.labels(*labels)
        return child


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry

        def counter(name: str, doc: str, labels: tuple[str, ...]) -> Series:
            return Series(Counter(PREFIX + name, doc, labels, registry=registry), bool(labels))

        def histogram(name: str, doc: str, labels: tuple[str, ...], buckets: tuple[float, ...]) -> Series:
            return Series(Histogram(PREFIX + name, doc, labels, registry=registry, buckets=buckets), bool(labels))

        served = ("model", "use_case")
        # HTTP (every request) and GraphQL (by operation).
        self.http_requests = counter("http_requests", "HTTP requests", ("method", "route", "status"))
        self.http_duration = histogram(
            "http_request_duration_seconds", "HTTP request latency", ("method", "route"), LATENCY_BUCKETS
        )
        self.graphql_requests = counter(
            "graphql_requests", "GraphQL requests by operation name and type", ("operation", "type", "status")
        )
        self.graphql_duration = histogram(
            "graphql_request_duration_seconds",
            "GraphQL request latency by operation",
            ("operation", "type"),
            LATENCY_BUCKETS,
        )
        self._graphql_names: set[str] = set()
        # LLM calls (chat and completions; embeddings count their input tokens).
        self.prompt_tokens = counter(
            "prompt_tokens", "Input tokens of served LLM calls (gen_ai token type input)", served
        )
        self.generation_tokens = counter(
            "generation_tokens", "Output tokens of served LLM calls (gen_ai token type output)", served
        )
        self.request_success = counter(
            "request_success", "LLM calls served, by finish reason", (*served, "finish_reason")
        )
        self.request_failure = counter(
            "request_failure", "LLM calls that no model could serve, by error code", (*served, "code")
        )
        self.e2e_latency = histogram(
            "e2e_request_latency_seconds",
            "LLM call duration, from the validated request to its last token",
            (*served, "stream"),
            GENERATION_BUCKETS,
        )
        self.time_to_first_token = histogram(
            "time_to_first_token_seconds", "Streamed LLM calls: time until the first token", served, GENERATION_BUCKETS
        )
        self.inter_token_latency = histogram(
            "inter_token_latency_seconds",
            "Streamed LLM calls: mean time between two output events, once per call",
            served,
            TOKEN_GAP_BUCKETS,
        )
        # The gateway in front of providers.
        self.upstream_errors = counter(
            "upstream_errors", "Failed attempts of a model's calls, by error", ("model", "error")
        )
        self.upstream_retries = counter(
            "upstream_retries", "Attempts of an external call made again after a retryable failure", ("model", "error")
        )
        self.fallbacks = counter(
            "gateway_fallbacks", "Calls a fallback model served after the primary failed", ("model", "fallback")
        )
        # The group-commit writer of logged traffic.
        self.ingest_lag = histogram(
            "ingest_queue_lag_seconds",
            "Time a logged batch waited before its commit (the oldest of each commit)",
            (),
            LATENCY_BUCKETS,
        )
        self.ingest_commit_batches = histogram(
            "ingest_commit_batch_size", "Requests' batches merged into one commit", (), SIZE_BUCKETS
        )
        self.ingest_commit_rows = histogram("ingest_commit_rows", "Rows inserted by one commit", (), SIZE_BUCKETS)
        # Background work.
        self.jobs = counter("jobs", "Jobs the runner moved to a state", ("kind", "status"))
        self.job_duration = histogram(
            "job_duration_seconds", "Run time of finished jobs", ("kind", "status"), JOB_BUCKETS
        )
        self.ab_evaluations = counter("ab_test_evaluations", "Evaluation passes over active A/B tests", ())
        self.ab_decisions = counter("ab_test_decisions", "A/B tests an evaluation ended", ())
        self.notification_deliveries = counter(
            "notification_deliveries", "Notification delivery attempts, by outcome", ("provider", "outcome")
        )
        self.notification_duration = histogram(
            "notification_delivery_duration_seconds", "Duration of one delivery attempt", ("provider",), LATENCY_BUCKETS
        )

    def graphql_operation(self, name: str | None) -> str:
        """The label of an operation name: bounded, since clients choose names."""
        if not name:
            return ANONYMOUS
        if name in self._graphql_names:
            return name
        if len(self._graphql_names) >= MAX_GRAPHQL_OPERATIONS:
            return OTHER
        self._graphql_names.add(name)
        return name

    def watch(self, collector: Collector) -> None:
        if self.registry is not None:
            self.registry.register(collector)


# What a live reading yields: (kind "gauge" or "counter", name, help, label names, [(label values, value)]).
Reading = tuple[str, str, str, tuple[str, ...], Iterable[tuple[tuple[str, ...], float]]]


class LiveReadings(Collector):
    """Series read from live objects when /metrics is scraped (``read()`` yields :data:`Reading` tuples)."""

    def __init__(self, read: Callable[[], Iterable[Reading]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Any]:
        for kind, name, doc, labels, samples in self._read():
            family_type = CounterMetricFamily if kind == "counter" else GaugeMetricFamily
            family = family_type(PREFIX + name, doc, labels=list(labels))
            for values, value in samples:
                family.add_metric(list(values), value)
            yield family

    def describe(self) -> Iterable[Any]:
        return []  # read at scrape time only; nothing to check at registration
