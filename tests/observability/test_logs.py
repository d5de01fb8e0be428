"""Structured logs (issue 16): `serve` with ADAPTIVE_LOG_FORMAT=json writes one JSON object per line, the access
log included, each record of a request carrying its id (the caller's X-Request-ID, or one made and sent back).
The server runs as a real subprocess on both databases; its output lines are parsed."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from adaptive_engine import Adaptive
from tests.inference.fixtures import API_KEY
from tests.support import free_port, private_postgres_database

SRC = str(Path(__file__).resolve().parents[2] / "src")
KEY = "json-log-test-key"


@contextlib.contextmanager
def serving(tmp_path: Path, database: str | None, **env: str) -> Iterator[tuple[str, dict[str, list[str]]]]:
    """`serve` in a subprocess until the block ends; then the dict holds its stdout and stderr lines."""
    port = free_port()
    with contextlib.ExitStack() as stack:
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
            str(tmp_path),
        ]
        if database:
            command += ["--database-url", stack.enter_context(private_postgres_database())]
        environment = {
            **os.environ,
            "PYTHONPATH": SRC,
            "ADAPTIVE_ADMIN_API_KEY": KEY,
            "ADAPTIVE_BUNDLED_MODELS": "false",
            "ADAPTIVE_BUILTIN_RECIPES": "false",
            **env,
        }
        out, err = tmp_path / "stdout", tmp_path / "stderr"
        with out.open("wb") as stdout, err.open("wb") as stderr:
            process = subprocess.Popen(command, env=environment, stdout=stdout, stderr=stderr)
        lines: dict[str, list[str]] = {}
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{base}/health").status_code == 200:
                        break
                assert process.poll() is None, err.read_text()
                assert time.monotonic() < deadline, "server did not become healthy"
                time.sleep(0.2)
            yield base, lines
        finally:
            process.terminate()
            process.wait(timeout=30)
            lines["stdout"] = out.read_text().splitlines()
            lines["stderr"] = err.read_text().splitlines()


def records(lines: list[str]) -> list[dict[str, Any]]:
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except json.JSONDecodeError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
    return parsed


def test_json_logs_with_request_ids(tmp_path: Path, database: str | None, upstream) -> None:  # noqa: ANN001
    auth = {"Authorization": f"Bearer {KEY}"}
    with serving(tmp_path, database, ADAPTIVE_LOG_FORMAT="json") as (base, lines):
        given = httpx.get(f"{base}/api/v1/models", headers={**auth, "X-Request-ID": "trace-abc.123"})
        made = httpx.get(f"{base}/api/v1/models", headers=auth)
        hostile = httpx.get(f"{base}/api/v1/models", headers={**auth, "X-Request-ID": 'x" injected="1'})
        refused = httpx.get(f"{base}/api/v1/models", headers={"X-Request-ID": "no-key-here"})
        # A request whose handling logs a warning: a model that fails, then its fallback serves.
        with Adaptive(base, api_key=KEY, max_retries=0) as admin:
            s = uuid.uuid4().hex[:6]
            admin.use_cases.create(key=f"uc-{s}")
            for key, external in ((f"good-{s}", "gpt-test"), (f"bad-{s}", f"fail500x99-{s}")):
                admin.models.add_external(
                    name=key,
                    key=key,
                    external_model_id=external,
                    api_key=API_KEY,
                    provider="open_ai",
                    endpoint=upstream.base_url,
                )
                admin.models.attach(key, use_case=f"uc-{s}")
            admin.models.update_gateway_config(f"bad-{s}", max_retries=0, fallbacks=[f"good-{s}"])
        chat = httpx.post(
            f"{base}/api/v1/chat/completions",
            headers={**auth, "X-Request-ID": f"chat-{s}"},
            json={"model": f"uc-{s}/bad-{s}", "messages": [{"role": "user", "content": "hi"}]},
            timeout=30,
        )
        assert chat.status_code == 200, chat.text

    assert given.headers["x-request-id"] == "trace-abc.123"
    assert re.fullmatch(r"[0-9a-f]{32}", made.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", hostile.headers["x-request-id"])  # not echoed: replaced
    assert refused.status_code == 401 and refused.headers["x-request-id"] == "no-key-here"
    assert chat.headers["x-request-id"] == f"chat-{s}"

    access = records(lines["stdout"])  # every line is JSON
    server = records(lines["stderr"])
    assert all(r["logger"] == "adaptive_engine.access" for r in access)
    by_id = {r.get("request_id"): r for r in access}
    line = by_id["trace-abc.123"]
    assert (line["method"], line["path"], line["status"], line["level"]) == ("GET", "/api/v1/models", 200, "INFO")
    assert line["duration_ms"] >= 0 and line["client"] == "127.0.0.1" and line["time"].endswith("+00:00")
    assert by_id[made.headers["x-request-id"]]["status"] == 200
    assert by_id["no-key-here"]["status"] == 401
    assert by_id[f"chat-{s}"]["path"] == "/api/v1/chat/completions"
    # The gateway's warning, written while the request ran, names it.
    warning = [r for r in server if "serves instead" in r["message"]]
    assert len(warning) == 1 and warning[0]["request_id"] == f"chat-{s}" and warning[0]["level"] == "WARNING"
    assert warning[0]["logger"].startswith("adaptive_engine")
    # uvicorn's own lines are JSON too, and carry no request id.
    assert any(r["logger"].startswith("uvicorn") and "request_id" not in r for r in server)


def test_text_logs_stay_the_default(tmp_path: Path) -> None:
    with serving(tmp_path, None) as (base, lines):
        answer = httpx.get(
            f"{base}/api/v1/models", headers={"Authorization": f"Bearer {KEY}", "X-Request-ID": "plain-1"}
        )
    assert answer.headers["x-request-id"] == "plain-1"
    output = lines["stdout"] + lines["stderr"]
    assert any('"GET /api/v1/models HTTP/1.1" 200' in line for line in output)  # uvicorn's access line
    assert not any(line.startswith("{") for line in output)


def test_bad_log_format_is_refused(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": SRC, "ADAPTIVE_LOG_FORMAT": "yaml"}
    done = subprocess.run(
        [sys.executable, "-m", "adaptive_engine.cli", "serve", "--port", str(free_port()), "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0 and "log_format" in done.stderr
