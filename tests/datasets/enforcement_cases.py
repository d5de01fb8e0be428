"""Permission table rows of datasets from traffic, exports and curation (see tests/enforcement.py)."""

from __future__ import annotations

import json
import uuid

from tests.enforcement import Case, gql, rest

FILTERS_INPUT = """input: {useCase: $u, name: $n, kind: PROMPT_COMPLETION,
  completionQuery: {fromFilters: {filters: {useCase: $u}, exclude: []}}}"""


def _setup(w) -> None:
    key = f"cur-{w.suffix}"
    gql(
        w.admin,
        "mutation M($input: MetricCreate!) { createMetric(input: $input) { id } }",
        {"input": {"key": key, "name": key, "kind": "SCALAR"}},
    )
    created = rest(
        w.admin,
        "POST",
        "/interactions",
        json={
            "use_case": w.uc_a,
            "messages": [{"role": "user", "content": "hi"}],
            "completion": "hello",
            "feedbacks": [{"metric": key, "value": 0.5}],
        },
    )
    w.extra["curate"] = {"completion": created["completion_id"], "feedback": created["feedback_ids"][0], "metric": key}


def _pick(w, uc: str, name: str) -> str:
    return w.extra["curate"][name] if uc == w.uc_a else str(uuid.uuid4())


def _datasets(a, w):
    return sorted(d.key or d.id for d in a.datasets.list(use_case=w.uc_a))


def _curated(a, w):
    got = a.interactions.get(w.extra["curate"]["completion"], use_case=w.uc_a)
    return (
        sorted((lbl.key, lbl.value) for lbl in got.labels),
        got.user_metadata,
        [(f.value, f.details) for f in got.direct_feedbacks],
    )


def _link(field: str):
    def run(c, w, uc):
        return gql(c, f"query L($f: ListCompletionsFilterInput!) {{ {field}(filter: $f) }}", {"f": {"useCase": uc}})

    return run


CASES = [
    Case(
        ("Query.preview_dataset_from_filters",),
        on_use_case=lambda c, w, uc: gql(
            c,
            f"query P($u: IdOrKey!, $n: String!) {{ previewDatasetFromFilters({FILTERS_INPUT}) }}",
            {"u": uc, "n": "preview"},
        ),
        allowed_as=("viewer",),
        denied_as=(),
        setup=_setup,
    ),
    Case(
        ("Mutation.create_dataset_from_filters",),
        on_use_case=lambda c, w, uc: gql(
            c,
            f"mutation C($u: IdOrKey!, $n: String!) {{ createDatasetFromFilters({FILTERS_INPUT}) {{ id }} }}",
            {"u": uc, "n": w.fresh("fromfilters")},
        ),
        snapshot=_datasets,
    ),
    Case(
        ("Query.completion_download_url",),
        on_use_case=_link("completionDownloadUrl"),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Query.completion_as_dataset_download_url",),
        on_use_case=_link("completionAsDatasetDownloadUrl"),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("GET /api/v1/completions/export",),
        on_use_case=lambda c, w, uc: rest(
            c,
            "GET",
            "/completions/export",
            params={"use_case": uc, "filter": json.dumps({}), "format": "csv"},
            raw=True,
        ),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Mutation.update_completion",),
        on_use_case=lambda c, w, uc: c.interactions.update_completion(
            _pick(w, uc, "completion"), add_labels={"seen": "yes"}, metadata={"by": "editor"}
        ),
        snapshot=_curated,
    ),
    Case(
        ("Mutation.add_direct_feedback",),
        on_use_case=lambda c, w, uc: c.feedback.add_direct_feedback(
            _pick(w, uc, "completion"), w.extra["curate"]["metric"], 1
        ),
        snapshot=_curated,
    ),
    Case(
        ("Mutation.update_feedback",),
        on_use_case=lambda c, w, uc: c.feedback.update_feedback(_pick(w, uc, "feedback"), value=0.9, details="fixed"),
        snapshot=_curated,
    ),
]
