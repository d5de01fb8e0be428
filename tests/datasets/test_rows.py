"""Dataset.rows: a dataset's rows read back in pages (the console's preview), on both databases."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from adaptive_engine import Adaptive

QUERY = (
    "query($key: IdOrKey!, $useCase: IdOrKey!, $offset: Int!, $limit: Int!) {"
    " dataset(idOrKey: $key, useCase: $useCase) { records rows(offset: $offset, limit: $limit) } }"
)


def ask(server: Any, api_key: str, use_case: str, offset: int, limit: int) -> dict[str, Any]:
    variables = {"key": "faq", "useCase": use_case, "offset": offset, "limit": limit}
    return httpx.post(
        f"{server.base_url}/api/graphql",
        json={"query": QUERY, "variables": variables},
        headers={"Authorization": f"Bearer {api_key}"},
    ).json()


def test_rows_page_through_the_file(client: Adaptive, server: Any, tmp_path: Path, unique: str) -> None:
    use_case = f"rows-{unique}"
    client.use_cases.create(key=use_case)
    rows = [
        {
            "messages": [{"role": "user", "content": f"question {i}"}],
            "completion": f"answer {i}",
            "labels": {"n": str(i)},
        }
        for i in range(7)
    ]
    path = tmp_path / "faq.jsonl"
    # A blank line is not a row.
    path.write_text("\n".join(json.dumps(r) for r in rows[:3]) + "\n\n" + "\n".join(json.dumps(r) for r in rows[3:]))
    client.datasets.upload(str(path), "faq", use_case=use_case)

    first = ask(server, server.api_key, use_case, 0, 5)["data"]["dataset"]
    assert first["records"] == 7 and first["rows"] == rows[:5]
    assert ask(server, server.api_key, use_case, 5, 5)["data"]["dataset"]["rows"] == rows[5:]
    assert ask(server, server.api_key, use_case, 7, 5)["data"]["dataset"]["rows"] == []

    for offset, limit, message in (
        (-1, 5, "offset must be 0 or more"),
        (0, 0, "limit must be between 1 and 100"),
        (0, 101, "limit must be between 1 and 100"),
    ):
        error = ask(server, server.api_key, use_case, offset, limit)["errors"][0]
        assert error["extensions"]["code"] == "INVALID_INPUT" and error["message"] == message

    # Whoever cannot read the use case gets no rows (the dataset field is guarded).
    team = f"t-{unique}"
    client.teams.create(key=team)
    client.users.create(email=f"o-{unique}@example.com", name="O", teams_with_role=[(team, "editor")])
    outsider = client.api_keys.create(name="t", user=f"o-{unique}@example.com").key
    denied = ask(server, outsider, use_case, 0, 5)
    assert denied["errors"][0]["extensions"]["code"] == "NOT_FOUND" and not denied.get("data", {}).get("dataset")
