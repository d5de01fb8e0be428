"""Permission table rows of interactions and feedback (swept by identity; their domain may move them)."""

from __future__ import annotations

import uuid

from tests.enforcement import Case, gql, rest

MESSAGES = [{"role": "user", "content": "What is 2+2?"}]


def _interaction(c, uc: str, session_id: str | None = None) -> dict:
    body = {"use_case": uc, "completion": "4", "messages": MESSAGES}
    if session_id:
        body["session_id"] = session_id
    return rest(c, "POST", "/interactions", json=body)


def _create_metric(c, key: str):
    query = "mutation M($input: MetricCreate!) { createMetric(input: $input) { id key } }"
    return gql(c, query, {"input": {"key": key, "name": key, "kind": "SCALAR"}})["createMetric"]


def _link(c, uc: str, metric: str, unlink: bool = False):
    if unlink:
        return gql(
            c,
            "mutation U($input: MetricUnlink!) { unlinkMetric(input: $input) }",
            {"input": {"useCase": uc, "metric": metric}},
        )
    query = "mutation L($input: MetricLink!) { linkMetric(input: $input) { key } }"
    return gql(c, query, {"input": {"useCase": uc, "metric": metric}})


def _setup(w) -> None:
    first = _interaction(w.admin, w.uc_a)
    second = _interaction(w.admin, w.uc_a, session_id=first["session_id"])
    w.extra["completion"], w.extra["other"], w.extra["session"] = (
        first["completion_id"],
        second["completion_id"],
        first["session_id"],
    )
    for name in ("fb", "to-link", "to-unlink"):
        _create_metric(w.admin, f"{name}-{w.suffix}")
    _link(w.admin, w.uc_a, f"fb-{w.suffix}")
    _link(w.admin, w.uc_a, f"to-unlink-{w.suffix}")


def _pick(w, uc: str, name: str) -> str:
    """The completion/session of uc_a, or an unknown id when the row targets a missing use case."""
    return w.extra[name] if uc == w.uc_a else str(uuid.uuid4())


def _completions_count(a, w) -> int:
    query = "query C($filter: ListCompletionsFilterInput!) { completions(filter: $filter) { totalCount } }"
    return gql(a, query, {"filter": {"useCase": w.uc_a}})["completions"]["totalCount"]


def _metric_keys(a, w):
    return sorted(m["key"] for m in gql(a, "query { metrics { key } }")["metrics"])


def _linked(a, w):
    return sorted(m.key for m in a.use_cases.get(w.uc_a).metrics)


def _stats(field: str):
    def run(c, w, uc):
        inner = "count" if field == "feedbackStatistics" else "total"
        return gql(
            c, f"query S($f: FeedbackStatisticsFilter!) {{ {field}(filter: $f) {{ {inner} }} }}", {"f": {"useCase": uc}}
        )

    return run


CASES = [
    Case(
        ("Query.metrics",),
        op=lambda c, w: gql(c, "query { metrics { key } }"),
        allowed_as=("viewer", "outsider"),
        denied_as=(),
        setup=_setup,
    ),
    Case(
        ("Query.metric",),
        op=lambda c, w: gql(c, "query M($k: IdOrKey!) { metric(idOrKey: $k) { key } }", {"k": f"fb-{w.suffix}"}),
        allowed_as=("viewer", "outsider"),
        denied_as=(),
    ),
    Case(
        ("Query.feedback_statistics",), on_use_case=_stats("feedbackStatistics"), allowed_as=("viewer",), denied_as=()
    ),
    Case(
        ("Query.preference_statistics",),
        on_use_case=_stats("preferenceStatistics"),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Mutation.create_metric",),
        op=lambda c, w: _create_metric(c, w.fresh("metric")),
        allowed_as=("editor",),
        denied_as=("viewer",),
        snapshot=_metric_keys,
    ),
    Case(("Mutation.link_metric",), on_use_case=lambda c, w, uc: _link(c, uc, f"to-link-{w.suffix}"), snapshot=_linked),
    Case(
        ("Mutation.unlink_metric",),
        on_use_case=lambda c, w, uc: _link(c, uc, f"to-unlink-{w.suffix}", unlink=True),
        snapshot=_linked,
    ),
    Case(
        ("Query.completion",),
        on_use_case=lambda c, w, uc: gql(
            c,
            "query C($u: IdOrKey!, $id: UUID!) { completion(useCase: $u, id: $id) { id } }",
            {"u": uc, "id": w.extra["completion"]},
        ),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Query.completions",),
        on_use_case=lambda c, w, uc: gql(
            c,
            "query C($f: ListCompletionsFilterInput!) { completions(filter: $f) { totalCount } }",
            {"f": {"useCase": uc}},
        ),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Query.completions_grouped",),
        on_use_case=lambda c, w, uc: gql(
            c,
            (
                "query G($f: ListCompletionsFilterInput!) { completionsGrouped(groupBy: MODEL, filter:"
                " $f) { totalCount } }"
            ),
            {"f": {"useCase": uc}},
        ),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(("POST /api/v1/interactions",), on_use_case=lambda c, w, uc: _interaction(c, uc), snapshot=_completions_count),
    Case(
        ("POST /api/v1/feedback",),
        on_use_case=lambda c, w, uc: rest(
            c,
            "POST",
            "/feedback",
            json={"completion_id": _pick(w, uc, "completion"), "metric": f"fb-{w.suffix}", "value": 1},
        ),
    ),
    Case(
        ("POST /api/v1/comparison",),
        on_use_case=lambda c, w, uc: rest(
            c,
            "POST",
            "/comparison",
            json={
                "metric": f"fb-{w.suffix}",
                "preferred_completion": _pick(w, uc, "completion"),
                "other_completion": _pick(w, uc, "other"),
            },
        ),
    ),
    Case(
        ("POST /api/v1/outcome",),
        on_use_case=lambda c, w, uc: rest(
            c, "POST", "/outcome", json={"session_id": _pick(w, uc, "session"), "metric": f"fb-{w.suffix}", "value": 1}
        ),
    ),
]
