"""The closed loop end to end, smoke-sized: bench/closed_loop.py --smoke against a real server process.

It checks the loop runs (traffic, grading, sft/dpo/grpo from feedback only, eval before/after, A/B test
with auto-deploy) and reports every figure; whether the model learns is the benchmark's business.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]


def test_closed_loop_smoke(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    run = subprocess.run(
        [sys.executable, str(REPO / "bench" / "closed_loop.py"), "--smoke", "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    for recipe in ("sft", "dpo", "grpo"):  # base and tuned held-out pass rate, gain, train and eval seconds
        assert re.search(rf"^\s+{recipe}\s+[\d.]+%\s+[\d.]+%\s+[+-]\d+ pts\s+[\d.]+\s+[\d.]+$", output, re.M), output[
            -2000:
        ]
    assert re.search(r"training traffic: \d+ completions, \d+ passing", output), output[-2000:]
    assert "A/B: status" in output and "use case default now:" in output
    for stage in ("serve traffic", "grade", "eval held-out", "A/B test", "total"):
        assert re.search(rf"^\s+[\d.]+ s  {stage}", output, re.M), output[-2000:]
