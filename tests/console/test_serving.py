"""The server serves the console's build at `/`: long-cached hashed assets, index.html for client routes,
never in the way of the API, and a page that says how to build the console when there is no build."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support import LiveServer, make_settings

INDEX = '<!doctype html><html><head><script type="module" src="/assets/index-abc123.js"></script></head></html>'


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A console build as Vite lays it out: index.html, hashed files under assets/, public files at the top."""
    folder = tmp_path_factory.mktemp("dist")
    (folder / "index.html").write_text(INDEX)
    (folder / "assets").mkdir()
    (folder / "assets" / "index-abc123.js").write_text("console.log('console')")
    (folder / "favicon.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
    return folder


@pytest.fixture(scope="module")
def live(build: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(make_settings(tmp_path_factory.mktemp("data"), console_dir=build)) as server:
        yield server


def test_page_and_client_routes_get_index_html_without_auth(live: LiveServer) -> None:
    for path in ("/", "/use-cases", "/use-cases/support/interactions/0190-x", "/sign-in?next=%2Fuse-cases"):
        response = httpx.get(live.base_url + path)
        assert response.status_code == 200 and response.text == INDEX, path
        assert response.headers["cache-control"] == "no-cache"
        assert response.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-content-type-options"] == "nosniff"


def test_hashed_assets_are_cached_for_a_year(live: LiveServer) -> None:
    response = httpx.get(live.base_url + "/assets/index-abc123.js")
    assert response.status_code == 200 and response.text == "console.log('console')"
    assert response.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "javascript" in response.headers["content-type"]
    # A missing asset is a 404, not the page (a stale tab must not run HTML as a script).
    missing = httpx.get(live.base_url + "/assets/index-old999.js")
    assert missing.status_code == 404 and "html" not in missing.headers["content-type"]
    assert httpx.get(live.base_url + "/favicon.svg").headers["content-type"].startswith("image/svg")
    # No escape from the build folder.
    assert httpx.get(live.base_url + "/assets/..%2F..%2Fetc%2Fpasswd").status_code == 404


def test_server_routes_are_never_shadowed(live: LiveServer) -> None:
    assert httpx.get(live.base_url + "/health").json() == {"status": "ok"}
    for path in ("/api/v1/nope", "/api/graphql", "/metrics", "/openapi.json", "/docs"):
        response = httpx.get(live.base_url + path)
        assert response.status_code == 401 and response.headers["content-type"] == "application/json", path
    authed = httpx.get(live.base_url + "/api/v1/nope", headers={"Authorization": f"Bearer {live.api_key}"})
    assert authed.status_code == 404 and authed.json()["error"]["code"] == "NOT_FOUND"
    # Only GET and HEAD serve the page; other methods go to the API's rules.
    assert httpx.post(live.base_url + "/use-cases").status_code == 401
    assert httpx.head(live.base_url + "/use-cases").status_code == 200


def test_without_a_build_the_page_says_how_to_make_one(tmp_path: Path) -> None:
    with LiveServer(make_settings(tmp_path / "data", console_dir=tmp_path / "nothing")) as server:
        response = httpx.get(server.base_url + "/")
        assert response.status_code == 503 and "not built" in response.text and "make serve" in response.text
        assert "ADAPTIVE_CONSOLE_DIR" in response.text
        # The API works all the same.
        assert httpx.get(server.base_url + "/health").status_code == 200
