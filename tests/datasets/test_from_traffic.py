"""Datasets from logged traffic (createDatasetFromFilters / previewDatasetFromFilters) and exports, through our SDK
and the REST routes, on both databases."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk import errors
from tests.interactions.helpers import graphql
from tests.support import LiveServer, make_settings

PROMPTS = [f"Question {i}?" for i in range(3)]


@pytest.fixture
def traffic(client: Adaptive, unique: str) -> dict:
    """Three prompts with two answers each, scored on 'quality' (the second one better), labelled by split;
    and a preference between the two answers of the first prompt."""
    use_case = f"tr-{unique}"
    client.use_cases.create(key=use_case)
    client.set_default_use_case(use_case)
    quality, pref = f"quality-{unique}", f"pref-{unique}"
    client.feedback.register_key(quality, kind="scalar")
    client.feedback.register_key(pref, kind="bool")
    ids: dict[str, list[str]] = {}
    for i, prompt in enumerate(PROMPTS):
        messages = [{"role": "user", "content": prompt}]
        for j, score in enumerate((0.2, 0.9)):
            created = client.interactions.create(
                messages=messages,
                completion=f"answer {i}.{j}",
                labels={"split": "train" if i < 2 else "test"},
                feedbacks=[{"feedback_key": quality, "value": score}],
            )
            ids.setdefault(prompt, []).append(str(created.completion_id))
    first = ids[PROMPTS[0]]
    client.feedback.log_preference(pref, first[1], first[0])
    return {"use_case": use_case, "quality": quality, "pref": pref, "ids": ids}


def _rows(client: Adaptive, key: str, tmp_path: Path, fmt: str = "jsonl") -> list[dict]:
    path = client.datasets.download(key, str(tmp_path / f"{key}.{fmt}"), format=fmt)
    text = Path(path).read_text()
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO(text)))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_prompt_completion_keeps_the_best_answer_per_prompt(client: Adaptive, traffic: dict, tmp_path: Path) -> None:
    filters = {"labels": [{"key": "split", "value": ["train"]}]}
    preview = client.datasets.preview_from_filters("PROMPT_COMPLETION", filters=filters, metrics=[traffic["quality"]])
    assert preview.count == 2 and len(preview.rows) == 2
    dataset = client.datasets.create_from_filters(
        "sft-data", "PROMPT_COMPLETION", filters=filters, metrics=[traffic["quality"]]
    )
    assert dataset.kind == "PROMPT_COMPLETION" and dataset.source == "FILTERED" and dataset.status == "READY"
    assert dataset.records == 2 and dataset.progress.progress == 1.0
    assert dataset.download_url and "/api/v1/datasets/" in dataset.download_url
    rows = _rows(client, "sft-data", tmp_path)
    assert sorted(r["completion"] for r in rows) == ["answer 0.1", "answer 1.1"]
    assert all(r["labels"] == {"split": "train"} and r["messages"][0]["role"] == "user" for r in rows)
    as_csv = _rows(client, "sft-data", tmp_path, "csv")
    assert [r["completion"] for r in as_csv] == [r["completion"] for r in rows]
    assert json.loads(as_csv[0]["messages"]) == rows[0]["messages"]


def test_feedback_threshold_and_sampling(client: Adaptive, traffic: dict, tmp_path: Path) -> None:
    filters = {"feedbacks": [{"metric": traffic["quality"], "gte": 0.5}]}
    dataset = client.datasets.create_from_filters("fb", "PROMPT_COMPLETION_FEEDBACK", filters=filters)
    rows = _rows(client, "fb", tmp_path)
    assert dataset.records == 3 and {r["feedback"][traffic["quality"]] for r in rows} == {0.9}
    assert [m.metric.key for m in dataset.metrics_usage] == [traffic["quality"]]
    last = client.datasets.create_from_filters(
        "last2", "PROMPT_COMPLETION_FEEDBACK", filters=filters, selection="LAST", sample_size=2
    )
    assert last.records == 2
    # The latest completion of the first prompt left out by id.
    excluded = traffic["ids"][PROMPTS[0]][1]
    without = client.datasets.create_from_filters(
        "excl", "PROMPT_COMPLETION_FEEDBACK", filters=filters, exclude=[excluded]
    )
    assert without.records == 2 and excluded not in {r["id"] for r in _rows(client, "excl", tmp_path)}


def test_preferences_and_selection_by_id(client: Adaptive, traffic: dict, tmp_path: Path) -> None:
    dataset = client.datasets.create_from_filters("prefs", "PREFERENCE", filters={}, metrics=[traffic["pref"]])
    rows = _rows(client, "prefs", tmp_path)
    assert dataset.kind == "PREFERENCE" and len(rows) == 1
    assert rows[0]["chosen"] == "answer 0.1" and rows[0]["rejected"] == "answer 0.0"
    ids = traffic["ids"][PROMPTS[2]]
    picked = client.datasets.create_from_filters("picked", "PROMPT", completion_ids=ids)
    assert picked.records == 1 and _rows(client, "picked", tmp_path)[0]["messages"][0]["content"] == PROMPTS[2]


def test_exports_parse_back(client: Adaptive, traffic: dict, tmp_path: Path) -> None:
    filters = {"labels": [{"key": "split", "value": ["test"]}]}
    path = client.interactions.export(str(tmp_path / "i.jsonl"), filters=filters)
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert [r["completion"] for r in rows] == ["answer 2.0", "answer 2.1"]
    assert [r["feedback"][traffic["quality"]] for r in rows] == [0.2, 0.9]
    # Ids, times and sessions as the API lists them (the export reads them as text and epoch seconds in SQL).
    listed = client.interactions.list(filters=filters, order=[{"field": "created_at", "order": "ASC"}]).nodes
    assert [(r["id"], r["created_at"], r["session_id"], r["prompt_hash"]) for r in rows] == [
        (n.id, n.created_at, n.session_id and str(n.session_id), n.prompt_hash) for n in listed
    ]
    assert all(isinstance(r["created_at"], int) and r["created_at"] > 1_600_000_000 for r in rows)
    path = client.interactions.export(str(tmp_path / "i.csv"), filters=filters, format="csv")
    table = list(csv.DictReader(io.StringIO(Path(path).read_text())))
    assert [r["id"] for r in table] == [r["id"] for r in rows]
    assert json.loads(table[1]["feedback"]) == {traffic["quality"]: 0.9}
    path = client.interactions.export(str(tmp_path / "d.jsonl"), filters=filters, as_dataset=True)
    assert {tuple(json.loads(line)) for line in Path(path).read_text().splitlines()} == {
        ("id", "messages", "completion", "labels")
    }


def test_download_links_of_the_graphql_api(server: LiveServer, client: Adaptive, traffic: dict) -> None:
    query = """query($f: ListCompletionsFilterInput!) { completionDownloadUrl(filter: $f)
               completionAsDatasetDownloadUrl(filter: $f) }"""
    flt = {
        "useCase": traffic["use_case"],
        "feedbacks": [{"metric": traffic["quality"], "lt": 0.5}],
        "timerange": {"from": 0, "to": "2100-01-01T00:00:00Z"},
    }
    body = graphql(server, query, {"f": flt})
    data = body.get("data") or {}
    assert not body.get("errors"), body
    headers = {"Authorization": f"Bearer {server.api_key}"}
    plain = httpx.get(server.base_url + data["completionDownloadUrl"], headers=headers, timeout=30)
    assert plain.status_code == 200, plain.text
    assert sorted(json.loads(line)["completion"] for line in plain.text.splitlines()) == [
        "answer 0.0",
        "answer 1.0",
        "answer 2.0",
    ]
    as_dataset = httpx.get(server.base_url + data["completionAsDatasetDownloadUrl"], headers=headers, timeout=30)
    assert len(as_dataset.text.splitlines()) == 3 and "feedback" not in as_dataset.text
    no_auth = httpx.get(server.base_url + data["completionDownloadUrl"], timeout=30)
    assert no_auth.status_code == 401


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"kind": "PROMPT_COMPLETION", "filters": {}, "metrics": ["no-such-key"]}, errors.NotFoundError, "no-such-key"),
        (
            {"kind": "PROMPT_COMPLETION", "filters": {}, "selection": "ALL", "sample_size": 3},
            errors.ValidationError,
            "sampleSize",
        ),
        ({"kind": "PROMPT_COMPLETION", "filters": {}, "selection": "RANDOM"}, errors.ValidationError, "sampleSize"),
        ({"kind": "PROMPT_COMPLETION", "completion_ids": []}, errors.ValidationError, "at least one completion id"),
        ({"kind": "PREFERENCE", "filters": {"labels": [{"key": "nothing"}]}}, errors.ValidationError, "select no rows"),
        ({"kind": "PROMPT_COMPLETION", "filters": {"session_id": "not-a-uuid"}}, errors.ValidationError, "sessionId"),
        (
            {"kind": "PROMPT", "filters": {}, "metrics": ["{quality}"]},
            errors.ValidationError,
            "PROMPT dataset holds no",
        ),
    ],
)
def test_bad_filters_are_refused_and_create_nothing(
    client: Adaptive, traffic: dict, kwargs: dict, error: type, message: str
) -> None:
    kwargs = (
        {**kwargs, "metrics": [m.format(quality=traffic["quality"]) for m in kwargs["metrics"]]}
        if "metrics" in kwargs
        else kwargs
    )
    with pytest.raises(error, match=message):
        client.datasets.create_from_filters("bad", **kwargs)
    assert [d.key for d in client.datasets.list()] == []


def test_bad_exports_are_refused(server: LiveServer, traffic: dict) -> None:
    headers = {"Authorization": f"Bearer {server.api_key}"}
    for params, message in [
        ({"format": "xml"}, "format must be one of"),
        ({"filter": "{not json"}, "not valid JSON"),
        ({"filter": json.dumps({"colour": "red"})}, "unknown field(s) colour"),
        ({"filter": json.dumps({"timerange": {"from": "yesterday", "to": 1}})}, "timerange"),
        ({"filter": json.dumps({"useCase": "another"})}, "useCase must be the use_case"),
    ]:
        response = httpx.get(
            f"{server.base_url}/api/v1/completions/export",
            headers=headers,
            timeout=30,
            params={"use_case": traffic["use_case"], **params},
        )
        assert response.status_code == 400 and message in response.text, (params, response.text)


@pytest.fixture
def background_server(tmp_path: Path) -> Iterator[LiveServer]:
    with LiveServer(make_settings(tmp_path, dataset_inline_rows=1)) as live:
        yield live


def test_large_datasets_are_written_in_the_background(background_server: LiveServer, tmp_path: Path) -> None:
    with Adaptive(background_server.base_url, api_key=background_server.api_key) as client:
        client.use_cases.create(key="bg")
        client.set_default_use_case("bg")
        for i in range(5):
            client.interactions.create(messages=[{"role": "user", "content": f"p{i}"}], completion=f"c{i}")
        query = """mutation($i: DatasetCreateFromFilters!) { createDatasetFromFilters(input: $i) {
                   key status progress { totalLines } } }"""
        started = graphql(
            background_server,
            query,
            {
                "i": {
                    "useCase": "bg",
                    "name": "bg",
                    "kind": "PROMPT_COMPLETION",
                    "completionQuery": {"fromFilters": {"filters": {"useCase": "bg"}, "exclude": []}},
                }
            },
        )
        assert not started.get("errors"), started
        started = started["data"]
        assert started["createDatasetFromFilters"]["status"] in ("PROCESSING", "READY")
        assert started["createDatasetFromFilters"]["progress"]["totalLines"] == 5
        # The SDK waits for it.
        dataset = client.datasets.create_from_filters("bg2", "PROMPT_COMPLETION", filters={})
        assert dataset.status == "READY" and dataset.records == 5
        assert len(_rows(client, "bg2", tmp_path)) == 5
