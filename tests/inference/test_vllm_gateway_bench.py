"""bench/vllm_gateway.py, the GPU check of the gateway in front of vLLM, run end to end here against the test
suite's vLLM stand-in (tests/inference/fake_vllm.py): both paths start, serve every request, and the report
prints each path's figures and the gateway's share. What vLLM itself does needs a GPU machine."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tests.models.support import tiny_llama_folder

REPO = Path(__file__).resolve().parents[2]
FAKE = Path(__file__).with_name("fake_vllm.py")


def test_the_vllm_gateway_bench_runs_against_the_stand_in(tmp_path: Path) -> None:
    folder = tiny_llama_folder(tmp_path / "model")
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "bench" / "vllm_gateway.py"),
            "--model-folder",
            str(folder),
            "--vllm-command",
            f"{sys.executable} {FAKE}",
            "--requests",
            "24",
            "--concurrency",
            "4",
            "--max-tokens",
            "4",
            "--start-timeout",
            "120",
        ],
        env={**os.environ, "PYTHONPATH": str(REPO / "src")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-3000:]
    for path in ("vLLM alone", "through our gateway"):
        # requests/s, tokens/s, p50, p99, and no errors: every request was answered on both paths
        assert re.search(rf"^{path}\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+0$", output, re.M), output
    assert re.search(r"gateway / vLLM: [\d.]+% of the requests/s, [\d.]+% of the tokens/s", output), output
