"""Operations (issue 13): one server per data dir, connections that cannot be held for ever, /metrics and the
team list for those entitled to them, and a job's key that registers only what its job made."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk import errors
from adaptive_engine.sdk.resources.job_runtime import JobRuntime
from adaptive_engine.server.datadir_lock import IN_USE_EXIT_STATUS, LOCK_FILE, DataDirInUse, DataDirLock
from adaptive_engine.server.inference.manager import BUNDLED_CHAT, BUNDLED_EMBEDDING
from tests.identity.helpers import user_client
from tests.inference.fixtures import model_cache_dir, wait_online
from tests.jobs.helpers import job_key
from tests.support import LiveServer, free_port, make_settings

SRC = str(Path(__file__).resolve().parents[2] / "src")
KEY = "ops-test-admin-key"
SCRAPE_TOKEN = "ops-scrape-token"


# ----------------------------------------------------------------------------------------- data-dir lock


def _serve(data_dir: Path, port: int, log: Path | None = None) -> subprocess.Popen[bytes]:
    """``serve`` in a process of its own; its output in ``log`` (a server that runs a while must not fill a
    pipe nobody reads), or in pipes for one expected to exit at once."""
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "ADAPTIVE_ADMIN_API_KEY": KEY,
        "ADAPTIVE_BUILTIN_RECIPES": "false",
        "ADAPTIVE_BUNDLED_MODELS": "true",
        "ADAPTIVE_MODEL_CACHE_DIR": str(model_cache_dir().parent),
    }
    command = [
        sys.executable,
        "-m",
        "adaptive_engine.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--data-dir",
        str(data_dir),
    ]
    if log is not None:
        with open(log, "wb") as out:
            return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _statuses(base_url: str) -> dict[str, str]:
    response = httpx.post(
        f"{base_url}/api/graphql",
        headers={"Authorization": f"Bearer {KEY}"},
        json={"query": "{ models { key online } }"},
        timeout=60,
    )
    return {m["key"]: m["online"] for m in response.json()["data"]["models"]}


def test_a_second_serve_on_the_same_data_dir_refuses_at_once_and_touches_nothing(tmp_path: Path) -> None:
    data, log = tmp_path / "data", tmp_path / "first.log"
    port = free_port()
    first = _serve(data, port, log)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_models_online(first, base_url, log)
        with Adaptive(base_url, api_key=KEY) as client:
            client.use_cases.create(key="ops")
            client.models.deploy(BUNDLED_EMBEDDING, use_case="ops", wait=True)
            assert client.embeddings.create("before", use_case="ops").data
        before = _statuses(base_url)
        assert before[BUNDLED_CHAT] == before[BUNDLED_EMBEDDING] == "ONLINE"

        # The same port (the case that used to run its start-up, then die), and a free one: both refused,
        # by the lock, before any start-up work.
        for second_port in (port, free_port()):
            second = _serve(data, second_port)
            out, err = second.communicate(timeout=120)
            message = err.decode()
            assert second.returncode == IN_USE_EXIT_STATUS, message
            assert f"data dir {data.resolve()} is in use by another Adaptive Engine server (pid {first.pid}" in message
            assert "Traceback" not in message and "Started server process" not in message + out.decode()

        # Another data dir but the port in use: refused before start-up as well (no database made there).
        elsewhere = _serve(tmp_path / "elsewhere", port)
        _, err = elsewhere.communicate(timeout=120)
        assert elsewhere.returncode != 0 and "address already in use" in err.decode().lower(), err.decode()
        assert not (tmp_path / "elsewhere" / "engine.db").exists()

        # The first server never noticed: its models are online and it serves.
        assert _statuses(base_url) == before
        with Adaptive(base_url, api_key=KEY) as client:
            assert client.embeddings.create("after", use_case="ops").data
        assert (data / LOCK_FILE).read_text().startswith(f"pid {first.pid}")
    finally:
        first.terminate()
        first.wait(timeout=60)
    # Once the first is gone (its lock went with it), the data dir is free again.
    port = free_port()
    third = _serve(data, port, tmp_path / "third.log")
    try:
        deadline = time.monotonic() + 300
        while not _healthy(f"http://127.0.0.1:{port}"):
            assert third.poll() is None, (tmp_path / "third.log").read_text()
            assert time.monotonic() < deadline, "the data dir stayed locked"
            time.sleep(0.5)
        assert (data / LOCK_FILE).read_text().startswith(f"pid {third.pid}")
    finally:
        third.terminate()
        third.wait(timeout=60)


def _wait_for_models_online(server: subprocess.Popen[bytes], base_url: str, log: Path) -> None:
    """Bounded; a model in ERROR fails at once, and a server that makes no progress has its threads' stacks
    (``serve`` dumps them on SIGUSR1) in the failure."""
    deadline = time.monotonic() + 600  # a safety net: the first start converts the bundled model once
    while True:
        statuses = _statuses(base_url) if _healthy(base_url) else {}
        if statuses and set(statuses.values()) == {"ONLINE"}:
            return
        assert server.poll() is None, log.read_text()
        assert "ERROR" not in statuses.values(), f"{statuses}\n{log.read_text()[-20_000:]}"
        if time.monotonic() > deadline:
            server.send_signal(signal.SIGUSR1)
            time.sleep(2)
            raise AssertionError(f"the server never had its models online: {statuses}\n{log.read_text()[-20_000:]}")
        time.sleep(0.5)


def _healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health").status_code == 200
    except httpx.HTTPError:
        return False


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")  # uvicorn's exit, in its thread
def test_a_server_in_process_refuses_a_data_dir_in_use(tmp_path: Path) -> None:
    """create_app's own start-up takes the lock too (servers run without the CLI, as in these tests)."""
    with LiveServer(make_settings(tmp_path)) as live:
        with pytest.raises(
            DataDirInUse,
            match=rf"in use by another Adaptive Engine server \(pid {os.getpid()}, 127.0.0.1:{live.port}\)",
        ):
            DataDirLock.acquire(tmp_path)
        second = LiveServer(make_settings(tmp_path))
        with pytest.raises(RuntimeError, match="failed to start"):
            second.start(timeout=60)
        assert _healthy(live.base_url)
    with LiveServer(make_settings(tmp_path)) as again:  # released at shutdown
        assert _healthy(again.base_url)


def test_a_replica_starting_on_a_shared_database_leaves_the_models_online(tmp_path: Path, postgres_url: str) -> None:
    """Replicas share a PostgreSQL database, each with its own data dir. One starting used to flip the models
    the others serve to PENDING until it had loaded them itself: every replica answered 503 meanwhile."""
    common = {"bundled_models": True, "model_cache_dir": model_cache_dir().parent, "registry_cache_seconds": 0}
    with LiveServer(make_settings(tmp_path / "a", postgres_url, **common)) as first:
        wait_online(first, [BUNDLED_CHAT, BUNDLED_EMBEDDING])
        with Adaptive(first.base_url, api_key=first.api_key) as client:
            use_case = f"replicas-{uuid.uuid4().hex[:8]}"
            client.use_cases.create(key=use_case)
            client.models.deploy(BUNDLED_EMBEDDING, use_case=use_case, wait=True)
            with LiveServer(make_settings(tmp_path / "b", postgres_url, **common)) as second:
                # Its start-up is over (it loads in the background): the first still serves.
                assert {m.key: m.online for m in client.models.list()}[BUNDLED_EMBEDDING] == "ONLINE"
                assert client.embeddings.create("during", use_case=use_case).data
                with Adaptive(second.base_url, api_key=second.api_key) as other:
                    assert other.embeddings.create("on the new replica", use_case=use_case).data


# ----------------------------------------------------------------------------------------- connections


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(
        tmp_path_factory.mktemp("ops"),
        keep_alive_timeout_s=1,
        request_head_timeout_s=2,
        request_body_timeout_s=1,
        metrics_token=SCRAPE_TOKEN,
    )
    with LiveServer(settings) as live:
        yield live


def _closed_by_server(sock: socket.socket, limit_s: float = 30.0) -> bytes:
    """Read until the server closes the connection (fails past ``limit_s``, far above the settings under
    test: without a limit the server never closes); returns what it sent."""
    sock.settimeout(limit_s)
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            pytest.fail(f"the server kept the connection open for {limit_s} s (received {received!r})")
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk


def _connect(server: LiveServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port))


def test_a_connection_that_sends_nothing_is_closed(guarded: LiveServer) -> None:
    with _connect(guarded) as sock:
        assert _closed_by_server(sock) == b""


def test_an_idle_keep_alive_connection_is_closed_after_its_response(guarded: LiveServer) -> None:
    with _connect(guarded) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\n")
        received = _closed_by_server(sock)
        assert received.startswith(b"HTTP/1.1 200") and b'{"status":"ok"}' in received


def test_a_request_head_sent_slowly_is_cut_off(guarded: LiveServer) -> None:
    """Slow loris: a byte of header now and then never completes the head; the server does not wait."""
    with _connect(guarded) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n")
        sock.settimeout(0.5)
        closed = False
        for _ in range(60):  # up to 30 s of trickling, 15 times the limit
            try:
                sock.sendall(b"X")
                if sock.recv(1) == b"":
                    closed = True
                    break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        assert closed, "the server waited for the headers for 30 s"
    # A second request on a fresh connection after its response: the head limit starts again from there.
    with _connect(guarded) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\n\r\nGET /heal")
        received = _closed_by_server(sock)
        assert received.startswith(b"HTTP/1.1 200") and received.count(b"HTTP/1.1") == 1


@pytest.mark.parametrize("path", ["/api/v1/interactions", "/api/graphql"])
def test_a_request_body_that_stops_arriving_gets_408_and_the_connection_closes(guarded: LiveServer, path: str) -> None:
    with _connect(guarded) as sock:
        sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer {guarded.api_key}\r\n"
            'Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"query": '.encode()
        )
        received = _closed_by_server(sock)
    head, _, body = received.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), received
    assert b"connection: close" in head.lower()
    text = json.loads(body)
    code = text["error"]["code"] if "error" in text else text["errors"][0]["extensions"]["code"]
    assert code == "REQUEST_TIMEOUT"
    # The server is fine, and a body that arrives in time is not affected.
    assert httpx.post(
        f"{guarded.base_url}/api/graphql",
        json={"query": "{ me { email } }"},
        headers={"Authorization": f"Bearer {guarded.api_key}"},
    ).json()["data"]["me"]["email"]


# ----------------------------------------------------------------------------------------- /metrics


def test_metrics_need_an_admin_key_or_the_scrape_token(guarded: LiveServer) -> None:
    metrics = f"{guarded.base_url}/metrics"
    with Adaptive(guarded.base_url, api_key=guarded.api_key) as admin:
        admin.teams.create(key="metrics-team")
        admin.users.create(
            email="metrics-editor@example.com", name="Editor", teams_with_role=[("metrics-team", "editor")]
        )
        editor_key = admin.api_keys.create(name="test", user="metrics-editor@example.com").key
    refused = httpx.get(metrics, headers={"Authorization": f"Bearer {editor_key}"})
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "PERMISSION_DENIED"
    assert "ADAPTIVE_METRICS_TOKEN" in refused.json()["error"]["message"]
    for headers in ({}, {"Authorization": "Bearer not-the-token"}):
        response = httpx.get(metrics, headers=headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "UNAUTHENTICATED"
    for token in (SCRAPE_TOKEN, guarded.api_key):
        response = httpx.get(metrics, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200 and "adaptive_http_requests_total" in response.text
    # The scrape token opens /metrics only: it is no API key.
    response = httpx.post(
        f"{guarded.base_url}/api/graphql",
        json={"query": "{ me { email } }"},
        headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"},
    )
    assert response.status_code == 401
    response = httpx.get(f"{guarded.base_url}/api/v1/nothing", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"})
    assert response.status_code == 401


# ----------------------------------------------------------------------------------------- teams


def test_a_user_lists_only_the_teams_they_belong_to(client: Adaptive, server, unique: str) -> None:
    mine, theirs = f"mine-{unique}", f"theirs-{unique}"
    client.teams.create(key=mine)
    client.teams.create(key=theirs)
    with user_client(client, server, f"member-{unique}@example.com", [(mine, "viewer")]) as member:
        assert [t.key for t in member.teams.list()] == [mine]
    client.roles.create(key=f"team-manager-{unique}", permissions=["team:manage"])
    with user_client(client, server, f"manager-{unique}@example.com", [(mine, f"team-manager-{unique}")]) as manager:
        # Who adds members to any team sees them all, as admins do.
        assert {mine, theirs} <= {t.key for t in manager.teams.list()}
    assert {mine, theirs, "default"} <= {t.key for t in client.teams.list()}


# ----------------------------------------------------------------------------------------- job keys


def test_a_job_key_registers_only_what_its_job_made(client: Adaptive, server, tmp_path: Path, unique: str) -> None:
    use_case = f"reg-{unique}"
    client.use_cases.create(key=use_case)
    outside = tmp_path / "outside-model"
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    models_before = sorted(m.key for m in client.models.list())
    with job_key(client, server, tmp_path, use_case) as (job_id, as_job):
        # The registry's other doors are closed to it, whatever its creator (an admin) may do.
        for call in (
            lambda: as_job.models.add_external(
                name="x",
                external_model_id="gpt",
                api_key="k",
                provider="open_ai",
                endpoint="https://api.example.com/v1",
                key=f"ext-{unique}",
            ),
            lambda: as_job.models.add_hf_model(
                str(outside), output_model_name="x", output_model_key=f"hf-{unique}", hf_token=""
            ),
            lambda: as_job.models.add_local(str(outside), name="x", key=f"local-{unique}"),
            lambda: as_job.models.update_compute_config(f"any-{unique}", {"tp": 2}),
        ):
            with pytest.raises(errors.PermissionDeniedError, match="job's own routes"):
                call()
        runtime = JobRuntime(as_job)
        spec = {"key": f"escape-{unique}", "name": "escape", "attach": False}
        # Its own route, but a folder it did not make: refused.
        with pytest.raises(errors.PermissionDeniedError, match="inside its own job folder"):
            runtime.register_model(job_id, {**spec, "path": str(outside)})
        work = server.app.state.job_runner.job_dir(uuid.UUID(job_id)) / "work"
        linked = work / "linked"
        linked.mkdir()
        (linked / "config.json").symlink_to(outside / "config.json")
        with pytest.raises(errors.PermissionDeniedError, match="no links out"):
            runtime.register_model(job_id, {**spec, "path": str(linked)})
        # What it made, in its job folder: registered and attached to its use case, as a recipe does.
        made = work / "made"
        made.mkdir()
        (made / "config.json").write_text("{}")
        registered = runtime.register_model(
            job_id, {**spec, "key": f"made-{unique}", "path": str(made), "attach": True}
        )
        assert registered["key"] == f"made-{unique}"
        # Another job's routes are not its own.
        other = client.jobs.list(use_case=use_case).nodes
        assert all(j.id == job_id for j in other)
        with pytest.raises((errors.PermissionDeniedError, errors.NotFoundError)):
            runtime.register_model(str(uuid.uuid4()), {**spec, "path": str(made)})
    after = sorted(m.key for m in client.models.list())
    assert after == sorted([*models_before, f"made-{unique}"])
    assert client.models.get(f"made-{unique}").key == f"made-{unique}"
    assert f"made-{unique}" in [s.model.key for s in client.use_cases.get(use_case).model_services]
