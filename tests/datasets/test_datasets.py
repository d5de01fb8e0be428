"""Datasets through our SDK: kinds, validation, size limit, chunked upload, get/list/delete."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk import errors
from adaptive_engine.sdk.resources import datasets as datasets_resource

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]


def jsonl(tmp_path: Path, rows: list, name: str = "data.jsonl") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


@pytest.fixture
def use_case(client: Adaptive, unique: str) -> str:
    client.use_cases.create(key=f"ds-{unique}")
    client.set_default_use_case(f"ds-{unique}")
    return f"ds-{unique}"


@pytest.mark.parametrize(
    ("rows", "kind"),
    [
        ([{"messages": MESSAGES}, {"prompt": "plain"}], "PROMPT"),
        ([{"messages": MESSAGES, "completion": "hello"}, {"prompt": "p", "completion": "c"}], "PROMPT_COMPLETION"),
        ([{"prompt": "p", "completion": "c", "feedback": {"quality": 0.5, "ok": True}}], "PROMPT_COMPLETION_FEEDBACK"),
        ([{"messages": MESSAGES, "chosen": "good", "rejected": "bad", "labels": {"src": "x"}}], "PREFERENCE"),
        # Tool use as the gateway logs it: a call with null content, its result, the request's tools.
        (
            [
                {
                    "messages": MESSAGES
                    + [
                        {
                            "role": "assistant",
                            "content": None,
                            "tool_calls": [
                                {"id": "c1", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
                            ],
                        },
                        {"role": "tool", "tool_call_id": "c1", "content": "noon"},
                        {"role": "assistant", "content": "It is noon."},
                    ],
                    "tools": [{"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}],
                }
            ],
            "PROMPT",
        ),
    ],
)
def test_kinds_are_detected(
    client: Adaptive, use_case: str, tmp_path: Path, unique: str, rows: list, kind: str
) -> None:
    dataset = client.datasets.upload(str(jsonl(tmp_path, rows)), f"d-{kind.lower()}", name="My data")
    assert dataset.kind == kind and dataset.records == len(rows) and dataset.name == "My data"
    got = client.datasets.get(f"d-{kind.lower()}")
    assert got.id == dataset.id and got.kind == kind


@pytest.mark.parametrize(
    ("rows", "line", "reason"),
    [
        ([{"prompt": "a"}, "{not json"], 2, "invalid JSON"),
        (
            [{"prompt": "a"}, {"prompt": "b", "completion": "c"}],
            2,
            "row is PROMPT_COMPLETION but the file's rows are PROMPT",
        ),
        ([{"messages": [{"role": "robot", "content": "x"}]}], 1, "messages[0].role must be one of"),
        ([{"prompt": "a", "chosen": "x"}], 1, "a preference row needs both 'chosen' and 'rejected'"),
        ([{"prompt": "a"}, {"prompt": "b"}, {"completion": "c"}], 3, "a row needs 'messages'"),
        (
            [{"prompt": "a", "completion": "c", "feedback": {"q": "high"}}],
            1,
            "feedback 'q' must be a finite number or a boolean",
        ),
        ([{"prompt": "a", "answer": "x"}], 1, "unknown field(s) for a PROMPT row: answer"),
        ([[1, 2]], 1, "a row must be a JSON object"),
        (
            [{"messages": [{"role": "user", "content": "x", "tool_calls": [{}]}]}],
            1,
            "messages[0].tool_calls must be a non-empty list on an assistant message",
        ),
        ([{"prompt": "a", "tools": "get_time"}], 1, "'tools' must be a list of tool objects"),
    ],
)
def test_bad_files_are_rejected_whole(
    client: Adaptive, use_case: str, tmp_path: Path, rows: list, line: int, reason: str
) -> None:
    with pytest.raises(errors.ValidationError) as caught:
        client.datasets.upload(str(jsonl(tmp_path, rows)), "bad")
    assert f"line {line}: {reason}" in caught.value.message
    assert [d.key for d in client.datasets.list()] == []
    with pytest.raises(errors.NotFoundError):
        client.datasets.get("bad")


def test_empty_file_and_duplicate_key(client: Adaptive, use_case: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(errors.ValidationError, match="no rows"):
        client.datasets.upload(str(empty), "empty")
    client.datasets.upload(str(jsonl(tmp_path, [{"prompt": "a"}])), "dup")
    with pytest.raises(errors.ConflictError, match="already exists"):
        client.datasets.upload(str(jsonl(tmp_path, [{"prompt": "b"}])), "dup")
    assert client.datasets.get("dup").records == 1


def test_list_delete_and_files(client: Adaptive, use_case: str, tmp_path: Path, server) -> None:
    first = client.datasets.upload(str(jsonl(tmp_path, [{"prompt": "a"}])), "one")
    client.datasets.upload(str(jsonl(tmp_path, [{"prompt": "b"}, {"prompt": "c"}])), "two")
    assert [d.key for d in client.datasets.list()] == ["one", "two"]
    stored = server.app.state.file_store.path(f"datasets/{first.id}.jsonl")
    assert stored.read_text().startswith('{"prompt": "a"}')
    assert client.datasets.delete("one") is True
    assert not stored.exists()
    assert [d.key for d in client.datasets.list()] == ["two"]
    with pytest.raises(errors.NotFoundError):
        client.datasets.delete("one")


def test_unknown_use_case(client: Adaptive, tmp_path: Path) -> None:
    with pytest.raises(errors.NotFoundError):
        client.datasets.upload(str(jsonl(tmp_path, [{"prompt": "a"}])), "x", use_case="no-such-use-case")


def test_chunked_upload(client: Adaptive, use_case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Small thresholds exercise the same code path as a file over 5 MB.
    monkeypatch.setattr(datasets_resource, "CHUNKED_THRESHOLD", 100)
    monkeypatch.setattr(datasets_resource, "CHUNK_SIZE", 64)
    rows = [{"prompt": f"row {i}", "completion": "x" * i} for i in range(20)]
    dataset = client.datasets.upload(str(jsonl(tmp_path, rows)), "chunked")
    assert dataset.records == 20 and dataset.kind == "PROMPT_COMPLETION"
    bad = rows + [{"prompt": "p"}]
    with pytest.raises(errors.ValidationError, match="line 21"):
        client.datasets.upload(str(jsonl(tmp_path, bad, "bad.jsonl")), "chunked-bad")
    assert "chunked-bad" not in [d.key for d in client.datasets.list()]


def test_size_limit(tmp_path: Path) -> None:
    from tests.support import LiveServer, make_settings

    with LiveServer(make_settings(tmp_path / "data", max_dataset_bytes=200)) as live:
        with Adaptive(live.base_url, api_key=live.api_key) as sdk:
            sdk.use_cases.create("limits")
            big = jsonl(tmp_path, [{"prompt": "x" * 50} for _ in range(10)])
            with pytest.raises(errors.ValidationError, match="limit of 200 bytes"):
                sdk.datasets.upload(str(big), "big", use_case="limits")
            assert sdk.datasets.list(use_case="limits") == []
            assert list((live.settings.resolved_files_dir / "tmp").iterdir()) == []
