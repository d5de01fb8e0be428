"""The chunked-upload REST routes and the job-reporting routes refuse bad input with typed errors."""

from __future__ import annotations

import httpx
import pytest

from adaptive_engine import Adaptive


@pytest.fixture
def http(server):
    with httpx.Client(base_url=server.base_url + "/api/v1", headers={"Authorization": f"Bearer {server.api_key}"}) as c:
        yield c


def test_chunked_upload_bad_input(http: httpx.Client, client: Adaptive, unique: str) -> None:
    assert http.post("/upload/init", json={"total_parts_count": 0}).status_code == 400
    session_id = http.post("/upload/init", json={"total_parts_count": 2, "content_type": "application/jsonl"}).json()[
        "session_id"
    ]
    out_of_range = http.post("/upload/part", params={"session_id": session_id, "part_number": 3}, content=b"x")
    assert out_of_range.status_code == 400 and "between 1 and 2" in out_of_range.json()["error"]["message"]
    missing = http.post(
        "/upload/part", params={"session_id": "00000000-0000-4000-8000-000000000000", "part_number": 1}, content=b"x"
    )
    assert missing.status_code == 404
    assert (
        http.post(
            "/upload/part", params={"session_id": session_id, "part_number": 1}, content=b'{"prompt": "a"}\n'
        ).status_code
        == 200
    )
    client.use_cases.create(key=f"up-{unique}")
    query = (
        "mutation($input: DatasetCreateFromMultipartUpload!) { createDatasetFromMultipartUpload(input:"
        " $input) { status } }"
    )
    variables = {"input": {"useCase": f"up-{unique}", "name": "d", "key": "d", "uploadSessionId": session_id}}
    incomplete = httpx.post(
        http.base_url.copy_with(path="/api/graphql"),
        json={"query": query, "variables": variables},
        headers={"Authorization": http.headers["Authorization"]},
    ).json()
    assert "part(s) 2 of 2 missing" in incomplete["errors"][0]["message"]
    assert http.request("DELETE", "/upload/abort", json={"session_id": session_id}).status_code == 200
    again = http.request("DELETE", "/upload/abort", json={"session_id": session_id})
    assert again.status_code == 409 and "aborted" in again.json()["error"]["message"]
    assert client.datasets.list(use_case=f"up-{unique}") == []


def test_job_routes_refuse_unknown_or_finished_jobs(http: httpx.Client) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    assert http.post(f"/jobs/{unknown}/progress", json={"progress": 0.5}).status_code == 404
    # The route's permission guard runs before body validation: an unknown job is not found, whatever the body.
    assert http.post(f"/jobs/{unknown}/progress", json={"progress": 1.5}).status_code == 404
    assert http.post(f"/jobs/{unknown}/artifacts", params={"name": "a"}, content=b"x").status_code == 404
    assert http.get(f"/artifacts/{unknown}/download").status_code == 404
    assert http.get("/artifacts/not-a-uuid/download").status_code == 404
    no_key = httpx.get(str(http.base_url) + f"/artifacts/{unknown}/download")
    assert no_key.status_code == 401
