"""Fixtures of the jobs tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adaptive_engine import Adaptive


@pytest.fixture
def use_case(client: Adaptive, unique: str, tmp_path: Path) -> str:
    """A use case, made the default, with a three-row dataset named 'rows'."""
    key = f"jobs-{unique}"
    client.use_cases.create(key=key)
    client.set_default_use_case(key)
    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join(json.dumps({"prompt": f"q{i}", "completion": "a"}) for i in range(3)))
    client.datasets.upload(str(rows), "rows")
    return key
