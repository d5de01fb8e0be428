"""The official adaptive-sdk client against our server: datasets, recipes, jobs, artifacts, compute pools."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

adaptive_sdk = pytest.importorskip("adaptive_sdk")


@pytest.fixture
def official(server):  # noqa: ANN001, ANN201
    return adaptive_sdk.Adaptive(base_url=server.base_url, api_key=server.api_key)


@pytest.fixture
def use_case(official, unique: str) -> str:  # noqa: ANN001
    official.use_cases.create(key=f"offjobs-{unique}", name="Official jobs")
    official.set_default_use_case(f"offjobs-{unique}")
    return f"offjobs-{unique}"


def test_datasets_upload_get_list_delete(official, use_case: str, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "prefs.jsonl"
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}], "chosen": "a", "rejected": "b"} for i in range(3)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    created = official.datasets.upload(str(path), "prefs", name="Preferences")
    assert created.kind.value == "PREFERENCE" and created.records == 3 and created.name == "Preferences"
    assert official.datasets.get("prefs").id == created.id
    assert [d.key for d in official.datasets.list()] == ["prefs"]
    assert official.datasets.delete("prefs") is True
    assert official.datasets.list() == []


def test_datasets_chunked_upload_over_5mb(official, use_case: str, tmp_path: Path) -> None:  # noqa: ANN001
    path = tmp_path / "big.jsonl"
    line = json.dumps({"prompt": "p" * 1000, "completion": "c" * 1000}) + "\n"
    count = (5 * 1024 * 1024) // len(line) + 10
    path.write_text(line * count)
    created = official.datasets.upload(str(path), "big")
    assert created.records == count and created.kind.value == "PROMPT_COMPLETION"
