"""Console sessions: an API key exchanged for an HttpOnly cookie, accepted by GraphQL and REST, CSRF on
writes, ended by sign-out and by revoking or deleting the key (both databases)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from adaptive_engine import Adaptive

SESSION = "/api/v1/auth/session"
ME = {"query": "{ me { email } }"}


def _team_mutation(key: str) -> dict:
    return {"query": "mutation($input: TeamCreate!) { createTeam(input: $input) { key } }", "variables": {"input": {"key": key, "name": key}}}


@pytest.fixture
def browser(server) -> Iterator[httpx.Client]:
    """A client that keeps cookies, as a browser does, and sends no Authorization header of its own."""
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        yield http


@pytest.fixture
def user_key(client: Adaptive, unique: str) -> tuple[str, str]:
    email = f"console-{unique}@example.com"
    client.users.create(email=email, name="Console user", teams_with_role=[("default", "editor")])
    return email, client.api_keys.create(name="console", user=email).key


def _sign_in(browser: httpx.Client, key: str, **headers: str) -> httpx.Response:
    response = browser.post(SESSION, headers={"Authorization": f"Bearer {key}", **headers})
    assert response.status_code == 201, response.text
    return response


def _cookie(response: httpx.Response, name: str) -> str:
    return next(c for c in response.headers.get_list("set-cookie") if c.startswith(f"{name}="))


def _gql(browser: httpx.Client, body: dict, csrf: str | None = None) -> httpx.Response:
    return browser.post("/api/graphql", json=body, headers={"X-CSRF-Token": csrf} if csrf else {})


def test_sign_in_sets_an_httponly_strict_cookie(browser: httpx.Client, user_key: tuple[str, str]) -> None:
    email, key = user_key
    response = _sign_in(browser, key)
    body = response.json()
    assert body["user"]["email"] == email and body["user"]["name"] == "Console user"
    assert body["authenticated_by"] == "session" and body["csrf_header"] == "X-CSRF-Token" and len(body["csrf_token"]) == 64
    cookie = _cookie(response, "ae_session")
    flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
    assert cookie.startswith("ae_session=") and {"httponly", "path", "max-age", "samesite"} <= flags
    assert "samesite=strict" in cookie.lower() and "secure" not in flags  # plain http here
    # The cookie holds an opaque id, not the key.
    assert key not in cookie
    # Behind a TLS proxy the cookie is Secure.
    secure = _sign_in(browser, key, **{"X-Forwarded-Proto": "https"})
    assert "secure" in {part.strip().lower() for part in _cookie(secure, "ae_session").split(";")}
    # Beside it, a marker the page may read, with nothing secret in it.
    marker = _cookie(response, "ae_signed_in")
    assert marker.startswith("ae_signed_in=1;") and "httponly" not in marker.lower()


def test_cookie_works_for_queries_and_needs_csrf_for_writes(server, browser: httpx.Client, client: Adaptive,
                                                             unique: str) -> None:
    csrf = _sign_in(browser, server.api_key).json()["csrf_token"]
    # A query by cookie alone (the console, and GraphiQL in the browser).
    email = _gql(browser, ME).json()["data"]["me"]["email"]
    assert email == client.users.me().email
    assert browser.get("/api/graphql", params={"query": "{ me { email } }"}).json()["data"]["me"]["email"] == email
    # A mutation by cookie without the header is refused, typed, and changes nothing.
    refused = _gql(browser, _team_mutation(f"t-{unique}")).json()
    assert refused["data"] is None and refused["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    assert "X-CSRF-Token" in refused["errors"][0]["message"]
    wrong = _gql(browser, _team_mutation(f"t-{unique}"), csrf="0" * 64).json()
    assert wrong["errors"][0]["extensions"]["code"] == "PERMISSION_DENIED"
    assert f"t-{unique}" not in {t.key for t in client.teams.list()}
    # With it, the mutation works.
    done = _gql(browser, _team_mutation(f"t-{unique}"), csrf=csrf).json()
    assert done == {"data": {"createTeam": {"key": f"t-{unique}"}}}
    # A REST write by cookie without the header: 403 with the typed envelope, and the session lives on.
    response = browser.delete(SESSION)
    assert response.status_code == 403 and response.json()["error"]["type"] == "permission_error"
    assert "X-CSRF-Token" in response.json()["error"]["message"]
    assert _gql(browser, ME).status_code == 200
    # GET by cookie needs no token and hands it back (a reloaded page asks here).
    current = browser.get(SESSION).json()
    assert current["authenticated_by"] == "session" and current["csrf_token"] == csrf


def test_sign_out_ends_the_session(browser: httpx.Client, user_key: tuple[str, str]) -> None:
    _, key = user_key
    response = _sign_in(browser, key)
    cookie = browser.cookies["ae_session"]
    csrf = response.json()["csrf_token"]
    out = browser.delete(SESSION, headers={"X-CSRF-Token": csrf})
    assert out.status_code == 200 and out.json() == {"ended": 1}
    assert "max-age=0" in _cookie(out, "ae_session").lower() and "max-age=0" in _cookie(out, "ae_signed_in").lower()
    # The same cookie, replayed after sign-out, no longer works.
    replay = httpx.post(f"{browser.base_url}/api/graphql", json=ME, cookies={"ae_session": cookie})
    assert replay.status_code == 401 and replay.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


def test_revoking_or_deleting_the_key_ends_its_sessions(browser: httpx.Client, client: Adaptive,
                                                        user_key: tuple[str, str], server) -> None:
    email, key = user_key
    _sign_in(browser, key)
    assert _gql(browser, ME).status_code == 200
    key_id = next(k.id for k in client.api_keys.list(user=email) if k.name == "console" and k.revoked_at is None)
    client.api_keys.revoke(key_id)
    assert _gql(browser, ME).status_code == 401
    assert browser.get(SESSION).status_code == 401
    # Deleting the user (and so its keys) ends them too.
    other = client.api_keys.create(name="console-2", user=email).key
    _sign_in(browser, other)
    assert _gql(browser, ME).status_code == 200
    client.users.delete(email)
    assert _gql(browser, ME).status_code == 401


def test_bad_key_or_cookie_gives_401_and_no_cookie(server, browser: httpx.Client) -> None:
    response = browser.post(SESSION, headers={"Authorization": "Bearer ae_not_a_key"})
    assert response.status_code == 401 and "set-cookie" not in response.headers
    assert response.json()["error"]["type"] == "authentication_error"
    assert browser.post(SESSION).status_code == 401
    forged = httpx.post(f"{server.base_url}/api/graphql", json=ME, cookies={"ae_session": "forged"})
    assert forged.status_code == 401


def test_bearer_wins_and_signs_out_every_session_of_its_key(server, user_key: tuple[str, str]) -> None:
    email, key = user_key
    browsers = [httpx.Client(base_url=server.base_url, timeout=30) for _ in range(2)]
    try:
        for b in browsers:
            _sign_in(b, key)
        # The admin's Bearer header decides who calls, whatever cookie rides along.
        admin = browsers[0].post("/api/graphql", json=ME, headers={"Authorization": f"Bearer {server.api_key}"})
        assert admin.json()["data"]["me"]["email"] != email
        info = httpx.get(f"{server.base_url}{SESSION}", headers={"Authorization": f"Bearer {key}"}).json()
        assert info["authenticated_by"] == "api_key" and info["csrf_token"] is None and info["user"]["email"] == email
        ended = httpx.delete(f"{server.base_url}{SESSION}", headers={"Authorization": f"Bearer {key}"})
        assert ended.json() == {"ended": 2}
        assert all(_gql(b, ME).status_code == 401 for b in browsers)
    finally:
        for b in browsers:
            b.close()


def test_sign_in_with_the_cookie_alone_is_refused(browser: httpx.Client, user_key: tuple[str, str]) -> None:
    _, key = user_key
    csrf = _sign_in(browser, key).json()["csrf_token"]
    again = browser.post(SESSION, headers={"X-CSRF-Token": csrf})
    assert again.status_code == 400 and "Bearer" in again.json()["error"]["message"]


def test_a_session_expires(tmp_path) -> None:
    import time

    from tests.support import LiveServer, make_settings

    settings = make_settings(tmp_path, console_session_hours=1.5 / 3600, auth_cache_seconds=0)
    with LiveServer(settings) as server:
        signed = httpx.post(f"{server.base_url}{SESSION}", headers={"Authorization": f"Bearer {server.api_key}"})
        cookie = {"Cookie": f"ae_session={signed.cookies['ae_session']}"}  # sent as is, whatever its max-age
        assert httpx.post(f"{server.base_url}/api/graphql", json=ME, headers=cookie).status_code == 200
        time.sleep(1.6)
        expired = httpx.post(f"{server.base_url}/api/graphql", json=ME, headers=cookie)
        assert expired.status_code == 401 and "expired" in expired.json()["errors"][0]["message"]
