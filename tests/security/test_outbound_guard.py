"""The one outbound guard, through every caller: reward servers (grader create and test, remote envs, grading),
external models (registration and each connection), webhooks and Slack, and the Ray address. Real servers on
127.0.0.1 stand for the remote ends; the address checks touch no database, so the servers here run on SQLite.

What non-admins read when a remote end fails never carries its answer, and is the same for a closed port and
an open one that answers garbage: the server must not be a port scanner or a way to read internal services.
"""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from adaptive_engine import Adaptive
from adaptive_engine.sdk.errors import ServerError, ValidationError
from adaptive_engine.server.config import Settings
from adaptive_engine.server.domains.graders.remote import PUBLIC_FAILURE
from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.inference.backends.external import NOT_THE_API
from adaptive_engine.server.jobs.executors.ray import RayExecutor
from tests.ab_tests.support import in_db
from tests.graders.reward_servers import LengthRewardServer, RunningRewardServer, _wait_started
from tests.support import LiveServer, free_port, make_settings

SECRET = "SECRET-internal-answer"
# 169.254.169.254 (the cloud metadata address) written as one hexadecimal number: not an address literal, so
# only the check of what the name resolves to, when connecting, can stop it.
METADATA_AS_NUMBER = "0xa9fea9fe"


# ------------------------------------------------------------------ remote ends


class Recording:
    """An HTTP server standing for internal services: every answer carries SECRET; it records each request.

    /garbage/*   200 with an HTML page          /fail/info  a valid reward-server /info
    /broken/*    500 with a body                /fail/batch_score  500 with a body (its other routes: 404)
    /v1/*        an HTML 404 page (not an OpenAI-compatible API)
    """

    def __init__(self) -> None:
        self.hits: list[str] = []

        async def record(request: Request) -> Response:
            path = request.url.path
            self.hits.append(path)
            if path == "/fail/info":
                return JSONResponse({"name": "failing", "version": "1", "description": "fails to score"})
            if path.startswith("/garbage/"):
                return HTMLResponse(f"<html>{SECRET}</html>")
            if path.startswith("/v1/"):
                return HTMLResponse(f"<html>{SECRET} not found</html>", status_code=404)
            if path in ("/fail/batch_score", "/broken/info", "/broken/batch_score"):
                return PlainTextResponse(SECRET, status_code=500)
            return PlainTextResponse(SECRET, status_code=404)

        app = Starlette(routes=[Route("/{path:path}", record, methods=["GET", "POST"])])
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Recording:
        self.thread.start()
        _wait_started(self.server)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def tcp_garbage() -> Iterator[str]:
    """An open port that speaks no HTTP: it sends a banner with SECRET and hangs up."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                conn.sendall(f"SSH-2.0-{SECRET}\r\n".encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


@pytest.fixture(scope="module")
def remote() -> Iterator[Recording]:
    with Recording() as running:
        yield running


@pytest.fixture(scope="module")
def rewards() -> Iterator[RunningRewardServer]:
    running = RunningRewardServer(LengthRewardServer)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def garbage_port() -> Iterator[str]:
    with tcp_garbage() as url:
        yield url


# ------------------------------------------------------------------ servers and callers


class Caller:
    """An API key on a live server, through our SDK and raw GraphQL / REST."""

    def __init__(self, live: LiveServer, key: str) -> None:
        self.live, self.key = live, key
        self.sdk = Adaptive(live.base_url, api_key=key, max_retries=0)

    def gql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        return httpx.post(
            f"{self.live.base_url}/api/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=60,
        ).json()

    def chat(self, model: str) -> httpx.Response:
        return httpx.post(
            f"{self.live.base_url}/api/v1/chat/completions",
            timeout=60,
            headers={"Authorization": f"Bearer {self.key}"},
            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        )

    def add_remote_env(self, url: str) -> dict[str, Any]:
        return self.gql(
            "mutation($input: RemoteEnvCreate!) { addRemoteEnv(input: $input) { key url } }",
            {"input": {"url": url, "key": f"env-{uuid.uuid4().hex[:6]}"}},
        )

    def remote_env_urls(self) -> list[str]:
        return [e["url"] for e in self.gql("{ remoteEnvs { url } }")["data"]["remoteEnvs"]]


def _callers(live: LiveServer) -> tuple[Caller, Caller, str]:
    """The admin, an editor (a non-admin with grader:write and model:register) and a use case they share."""
    admin = Caller(live, live.api_key)
    team, use_case, email = (
        f"t-{uuid.uuid4().hex[:6]}",
        f"uc-{uuid.uuid4().hex[:6]}",
        f"ed-{uuid.uuid4().hex[:6]}@example.com",
    )
    admin.sdk.teams.create(key=team)
    admin.sdk.users.create(email=email, name="Editor", teams_with_role=[(team, "editor")])
    editor = Caller(live, admin.sdk.api_keys.create(name="test", user=email).key)
    admin.sdk.use_cases.create(key=use_case)
    admin.sdk.use_cases.share(use_case, team=team, role="editor")
    for caller in (admin, editor):
        caller.sdk.set_default_use_case(use_case)
    return admin, editor, use_case


@pytest.fixture(scope="module")
def lenient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Caller, Caller, str]]:
    """A server with the default policy: private and loopback addresses allowed."""
    settings = make_settings(tmp_path_factory.mktemp("lenient"), None, external_timeout_s=5.0)
    with LiveServer(settings) as live:
        callers = _callers(live)
        yield callers
        for caller in callers[:2]:
            caller.sdk.close()


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Caller, Caller, str]]:
    """ADAPTIVE_ALLOW_PRIVATE_NETWORKS=false."""
    settings = make_settings(
        tmp_path_factory.mktemp("strict"), None, allow_private_networks=False, external_timeout_s=5.0
    )
    with LiveServer(settings) as live:
        callers = _callers(live)
        yield callers
        for caller in callers[:2]:
            caller.sdk.close()


def _webhook(url: str) -> dict[str, Any]:
    return {
        "name": f"hook-{uuid.uuid4().hex[:6]}",
        "provider": "webhook",
        "config": {
            "connection": {"webhook": {"url": url, "method": "POST", "headers": {}}},
            "notification_settings": {"subscriptions": [{"topic_pattern": "job.*", "scope": "TEAM"}]},
        },
    }


def _refused_everywhere(admin: Caller, url: str, reason: str) -> None:
    """Every caller that takes a URL refuses ``url`` with INVALID_INPUT naming ``reason``, and stores nothing."""
    sdk = admin.sdk
    graders, models, envs = len(sdk.graders.list()), len(sdk.models.list()), admin.remote_env_urls()
    with pytest.raises(ValidationError, match=reason):
        sdk.graders.create.external_endpoint(key=f"g-{uuid.uuid4().hex[:6]}", url=url, feedback_key="reward")
    with pytest.raises(ValidationError, match=reason):
        sdk.graders.test_external_endpoint(url)
    answer = admin.add_remote_env(url)
    assert answer["errors"][0]["extensions"]["code"] == "INVALID_INPUT" and reason in answer["errors"][0]["message"]
    with pytest.raises(ValidationError, match=reason):
        sdk.models.add_external(
            name="ext",
            key=f"m-{uuid.uuid4().hex[:6]}",
            external_model_id="gpt-test",
            api_key="k",
            provider="open_ai",
            endpoint=url,
        )
    team = sdk.teams.create(key=f"h-{uuid.uuid4().hex[:6]}").key
    with pytest.raises(ValidationError, match=reason):
        sdk.integrations.create(team, _webhook(url))
    with pytest.raises(ValidationError, match=reason):
        sdk.integrations.create(
            team, {"name": "chat", "provider": "slack", "config": {"connection": {"slack": {"webhook_url": url}}}}
        )
    assert len(sdk.graders.list()) == graders and len(sdk.models.list()) == models
    assert admin.remote_env_urls() == envs and sdk.integrations.list(team) == []


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data", "metadata"),
        ("http://[fe80::1]:8080", "link-local"),
        ("http://[::ffff:169.254.169.254]", "metadata"),
        ("http://[fd00:ec2::254]", "metadata"),
        ("http://100.100.100.200", "metadata"),
        ("http://127.0.0.1:8080/\r\nX-Injected: 1", "line break"),
        ("http://127.0.0.1:8080/x\ny", "line break"),
        ("http://exa mple.com/", "whitespace"),
        ("http://127.0.0.1:8080/a b", "whitespace"),
        ("http://127.0.0.1:8080/\tx", "whitespace"),
        # NUL is refused by the input checks before any URL is looked at (see test_malformed_input).
        ("http://127.0.0.1:8080/\x00", "NUL character"),
        ("http://exa\u200bmple.com/", "control character"),
        ("http://user:pw@127.0.0.1:8080", "credentials"),
        # Other notations of an IPv4 address, which aiohttp connects to without asking any resolver.
        ("http://2852039166:8080", "no valid host"),
        ("http://127.1:8080", "no valid host"),
        ("http://0177.0.0.1:8080", "no valid host"),
    ],
)
def test_every_caller_refuses_metadata_and_malformed_urls(lenient, url: str, reason: str) -> None:
    admin, _, _ = lenient
    _refused_everywhere(admin, url, reason)


def test_names_resolving_to_metadata_are_refused_when_connecting(lenient, remote: Recording) -> None:
    """A name is not an address literal: it passes the URL check and is refused where it is resolved (external
    models' names are covered with loopback below, where a refusal can be told from a failed connection)."""
    admin, _, _ = lenient
    url = f"http://{METADATA_AS_NUMBER}:{remote.port}"
    with pytest.raises(ValidationError, match="169.254.169.254"):
        admin.sdk.graders.test_external_endpoint(url)
    with pytest.raises(ValidationError, match="metadata"):
        admin.sdk.graders.create.external_endpoint(key="meta", url=url, feedback_key="reward")


def test_ray_address_goes_through_the_guard() -> None:
    for bad in ("http://169.254.169.254:8265", "http://[fe80::1]:8265", "http://head:8265/\r\nx", "ftp://head:8265"):
        with pytest.raises(InvalidInput, match="ADAPTIVE_RAY_ADDRESS"):
            RayExecutor(bad)
    # The operator's own cluster is usually on a private network: allowed whatever the setting says.
    assert RayExecutor("http://127.0.0.1:8265").address == "http://127.0.0.1:8265"
    assert RayExecutor("ray://10.0.0.5:10001").address == "ray://10.0.0.5:10001"


def test_the_setting_and_its_old_name(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().allow_private_networks is True
    monkeypatch.setenv("ADAPTIVE_NOTIFY_ALLOW_PRIVATE_NETWORKS", "false")
    assert Settings().allow_private_networks is False
    monkeypatch.delenv("ADAPTIVE_NOTIFY_ALLOW_PRIVATE_NETWORKS")
    monkeypatch.setenv("ADAPTIVE_ALLOW_PRIVATE_NETWORKS", "false")
    assert Settings().allow_private_networks is False


# ------------------------------------------------------------------ ADAPTIVE_ALLOW_PRIVATE_NETWORKS=false


def test_loopback_refused_when_private_networks_are_disallowed(
    strict,
    rewards: RunningRewardServer,
    remote: Recording,
) -> None:
    admin, editor, use_case = strict
    hits = len(remote.hits)
    # Address literals: refused at registration by every caller.
    _refused_everywhere(admin, rewards.url, "ALLOW_PRIVATE_NETWORKS")
    _refused_everywhere(admin, f"http://[::1]:{rewards.port}", "ALLOW_PRIVATE_NETWORKS")
    # Names: refused where they are resolved, although a working server listens there.
    by_name = f"http://localhost:{remote.port}"
    for caller in (admin, editor):
        with pytest.raises(ValidationError, match="ALLOW_PRIVATE_NETWORKS"):
            caller.sdk.graders.test_external_endpoint(by_name + "/fail")
        with pytest.raises(ValidationError, match="ALLOW_PRIVATE_NETWORKS"):
            caller.sdk.graders.create.external_endpoint(key="local", url=by_name + "/fail", feedback_key="reward")
        assert "ALLOW_PRIVATE_NETWORKS" in caller.add_remote_env(by_name + "/fail")["errors"][0]["message"]
    model = admin.sdk.models.add_external(
        name="local",
        key=f"local-{uuid.uuid4().hex[:6]}",
        external_model_id="m",
        api_key="k",
        provider="open_ai",
        endpoint=f"{by_name}/v1",
    )
    admin.sdk.models.attach(model.key)
    answer = editor.chat(f"{use_case}/{model.key}")
    assert answer.status_code == 502 and NOT_THE_API in answer.json()["error"]["message"]
    # A grader registered while its name pointed elsewhere (DNS changes): refused when it is used.
    from sqlalchemy import select

    from adaptive_engine.server.db.models import Grader, Metric, UseCase

    async def add_grader(session) -> None:
        uc = (await session.execute(select(UseCase).where(UseCase.key == use_case))).scalar_one()
        metric = Metric(key=f"r-{uuid.uuid4().hex[:6]}", name="reward", kind="SCALAR")
        session.add(metric)
        await session.flush()
        session.add(
            Grader(
                use_case_id=uc.id,
                key="rebound",
                name="rebound",
                grader_type="REMOTE",
                config={"url": by_name + "/fail", "name": "x", "version": "1", "description": "d"},
                metric_id=metric.id,
            )
        )

    in_db(admin.live, add_grader)
    [result] = editor.sdk.graders.grade_batch(grader_key="rebound", samples=[{"messages": [], "completion": "a"}])
    assert result.score is None and "ALLOW_PRIVATE_NETWORKS" in result.error
    assert len(remote.hits) == hits  # nothing reached the server behind the name


# ------------------------------------------------------------------ what non-admins read


def test_non_admins_cannot_tell_open_from_closed_ports(lenient, remote: Recording, garbage_port: str) -> None:
    admin, editor, _ = lenient
    targets = {
        "closed": f"http://127.0.0.1:{free_port()}",
        "tcp garbage": garbage_port,
        "html": f"{remote.url}/garbage",
        "error with a body": f"{remote.url}/broken",
    }
    seen = {}
    for what, url in targets.items():
        offline = editor.sdk.graders.test_external_endpoint(url)
        assert offline.error == PUBLIC_FAILURE, what
        with pytest.raises(ServerError) as creating:
            editor.sdk.graders.create.external_endpoint(key="probe", url=url, feedback_key="reward")
        answer = editor.add_remote_env(url)["errors"][0]
        seen[what] = (offline.error, creating.value.message, answer["message"], answer["extensions"]["code"])
        assert SECRET not in str(seen[what])
    assert len(set(seen.values())) == 1, seen
    assert "probe" not in [g.key for g in editor.sdk.graders.list()]
    assert not set(editor.remote_env_urls()) & set(targets.values())
    # Admins are told what happened.
    assert "could not reach" in admin.sdk.graders.test_external_endpoint(targets["closed"]).error
    assert "not JSON" in admin.sdk.graders.test_external_endpoint(targets["html"]).error
    assert SECRET in admin.sdk.graders.test_external_endpoint(targets["error with a body"]).error


def test_grading_results_carry_no_remote_body(lenient, remote: Recording) -> None:
    """A reward server that fails to score: every sample records the generic reason (results are read by
    everyone on the use case), the cause goes to the server log."""
    admin, editor, _ = lenient
    admin.sdk.graders.create.external_endpoint(
        key=f"failing-{uuid.uuid4().hex[:6]}", url=f"{remote.url}/fail", feedback_key="reward"
    )
    key = admin.sdk.graders.list()[-1].key
    for caller in (editor, admin):
        results = caller.sdk.graders.grade_batch(grader_key=key, samples=[{"messages": [], "completion": "a"}] * 2)
        assert [r.error for r in results] == [PUBLIC_FAILURE] * 2 and [r.score for r in results] == [None, None]


def test_external_model_errors_carry_no_remote_body(lenient, remote: Recording, garbage_port: str) -> None:
    admin, editor, use_case = lenient
    answers = {}
    for what, endpoint in (
        ("closed", f"http://127.0.0.1:{free_port()}/v1"),
        ("tcp garbage", f"{garbage_port}/v1"),
        ("html 404", f"{remote.url}/v1"),
    ):
        model = editor.sdk.models.add_external(
            name=what,
            key=f"x-{uuid.uuid4().hex[:6]}",
            external_model_id="m",
            api_key="k",
            provider="open_ai",
            endpoint=endpoint,
        )
        editor.sdk.models.attach(model.key)
        answer = editor.chat(f"{use_case}/{model.key}")
        assert answer.status_code == 502 and SECRET not in answer.text, what
        answers[what] = (answer.json()["error"]["message"], answer.json()["error"]["code"])
    assert len(set(answers.values())) == 1, answers
