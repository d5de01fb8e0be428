"""The README's quickstart, run as written against a server with the bundled models: every output it prints
must be the one the README shows (temperature 0 makes the chat answer deterministic)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.inference.fixtures import model_cache_dir
from tests.support import LiveServer, make_settings

ROOT = Path(__file__).resolve().parents[2]
README_URL = "http://127.0.0.1:8000"


def _shown_outputs(readme: str) -> dict[str, list[str]]:
    """command -> the lines the README shows under it, from its console blocks."""
    shown: dict[str, list[str]] = {}
    for block in re.findall(r"```console\n(.*?)```", readme, re.S):
        command = None
        for line in block.splitlines():
            if line.startswith("$ "):
                command = line[2:]
                shown[command] = []
            elif command is not None:
                shown[command].append(line)
    return shown


def test_the_quickstart_prints_what_the_readme_shows(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    script = re.findall(r"```python\n(.*?)```", readme, re.S)[0]
    shown = _shown_outputs(readme)
    assert "make serve" in shown

    settings = make_settings(tmp_path / "data", bundled_models=True, model_cache_dir=model_cache_dir().parent)
    with LiveServer(settings) as live:
        deadline = time.monotonic() + 600
        while (ready := httpx.get(f"{live.base_url}/ready")).status_code != 200:
            assert "ERROR" not in ready.text, ready.text
            assert time.monotonic() < deadline, ready.text
            time.sleep(1)
        assert script.count(README_URL) == 1
        (tmp_path / "quickstart.py").write_text(script.replace(README_URL, live.base_url))
        env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "ADAPTIVE_API_KEY": live.api_key,
               "ADAPTIVE_BASE_URL": live.base_url}
        ran = subprocess.run([sys.executable, "quickstart.py"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=600)
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.splitlines() == shown[".venv/bin/python quickstart.py"]

        for command in (c for c in shown if c.startswith(".venv/bin/adaptive-engine ")):
            args = command.split()[1:]
            out = subprocess.run([sys.executable, "-m", "adaptive_engine.cli", *args], env=env, capture_output=True,
                                 text=True, timeout=120)
            assert out.returncode == 0, out.stderr
            assert out.stdout.splitlines() == shown[command], command
