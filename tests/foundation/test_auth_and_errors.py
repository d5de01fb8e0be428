from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk.errors import APIConnectionError, AuthenticationError
from tests.support import LiveServer, make_settings

SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_health_needs_no_key(server: LiveServer) -> None:
    response = httpx.get(f"{server.base_url}/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic abc"}])
def test_every_other_route_needs_a_valid_key(server: LiveServer, headers: dict[str, str]) -> None:
    for method, path in [("GET", "/metrics"), ("POST", "/api/v1/chat/completions"), ("GET", "/api/v1/nothing-here")]:
        response = httpx.request(method, f"{server.base_url}{path}", headers=headers, json={})
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "UNAUTHENTICATED"
    response = httpx.post(f"{server.base_url}/api/graphql", headers=headers, json={"query": "{ me { email } }"})
    assert response.status_code == 401
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_sdk_maps_bad_key_and_unreachable_server(server: LiveServer) -> None:
    with Adaptive(server.base_url, api_key="nope") as client, pytest.raises(AuthenticationError):
        client.users.me()
    with Adaptive("http://127.0.0.1:9", api_key="k", max_retries=0) as client, pytest.raises(APIConnectionError):
        client.users.me()
    with pytest.raises(ValueError):
        Adaptive("not a url", api_key="k")


def test_api_key_from_environment(server: LiveServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADAPTIVE_API_KEY", server.api_key)
    with Adaptive(server.base_url) as client:
        assert client.users.me().email == "admin@localhost"
    monkeypatch.delenv("ADAPTIVE_API_KEY")
    with pytest.raises(ValueError):
        Adaptive(server.base_url)


def test_graphql_bad_inputs_get_typed_errors(server: LiveServer) -> None:
    auth = {"Authorization": f"Bearer {server.api_key}"}
    url = f"{server.base_url}/api/graphql"
    malformed = httpx.post(url, headers={**auth, "content-type": "application/json"}, content=b"{not json")
    assert malformed.status_code == 400
    unknown_field = httpx.post(url, headers=auth, json={"query": "{ me { nope } }"}).json()
    assert unknown_field["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    wrong_type = httpx.post(
        url,
        headers=auth,
        json={
            "query": "mutation($i: UseCaseCreate!){ createUseCase(input: $i) { id } }",
            "variables": {"i": {"name": 3}},
        },
    ).json()
    assert wrong_type["errors"][0]["extensions"]["code"] == "INVALID_INPUT"
    unknown_key = httpx.post(
        url,
        headers=auth,
        json={
            "query": "mutation($i: UseCaseCreate!){ createUseCase(input: $i) { id } }",
            "variables": {"i": {"name": "x", "bogus": 1}},
        },
    ).json()
    assert unknown_key["errors"][0]["extensions"]["code"] == "INVALID_INPUT"


def test_rest_unknown_route_uses_openai_envelope(server: LiveServer) -> None:
    response = httpx.get(
        f"{server.base_url}/api/v1/nothing-here", headers={"Authorization": f"Bearer {server.api_key}"}
    )
    assert response.status_code == 404
    assert set(response.json()["error"]) >= {"message", "type", "code"}


def test_metrics_count_requests_per_route(server: LiveServer) -> None:
    auth = {"Authorization": f"Bearer {server.api_key}"}
    httpx.get(f"{server.base_url}/health")
    text = httpx.get(f"{server.base_url}/metrics", headers=auth).text
    assert 'adaptive_http_requests_total{method="GET",route="/health",status="200"}' in text
    assert "adaptive_http_request_duration_seconds_bucket" in text


def test_generated_admin_key_is_printed_once_and_stored_0600(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = make_settings(tmp_path, admin_api_key=None)
    with LiveServer(settings) as live:
        key = (tmp_path / "admin_api_key").read_text().strip()
        assert stat.S_IMODE(os.stat(tmp_path / "admin_api_key").st_mode) == 0o600
        with Adaptive(live.base_url, api_key=key) as client:
            assert client.users.me().email == "admin@localhost"
    assert key in capsys.readouterr().out
    with LiveServer(make_settings(tmp_path, admin_api_key=None)):
        pass
    assert key not in capsys.readouterr().out  # a restart does not mint or print another


def test_cli_keys_create(tmp_path: Path) -> None:
    with LiveServer(make_settings(tmp_path)) as live:
        env = {**os.environ, "PYTHONPATH": SRC}
        run = [sys.executable, "-m", "adaptive_engine.cli", "keys", "create", "--data-dir", str(tmp_path)]
        made = subprocess.run([*run, "--email", "admin@localhost"], capture_output=True, text=True, env=env, check=True)
        key = made.stdout.strip()
        with Adaptive(live.base_url, api_key=key) as client:
            assert client.users.me().email == "admin@localhost"
        missing = subprocess.run([*run, "--email", "nobody@example.com"], capture_output=True, text=True, env=env)
        assert missing.returncode == 1
        assert "not found" in missing.stderr
