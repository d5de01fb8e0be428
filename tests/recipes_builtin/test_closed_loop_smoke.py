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


def test_closed_loop_smoke_two_laps_the_second_from_preference_duels(tmp_path: Path) -> None:
    """The hard task, lap 1 from graded traffic (sft), lap 2 from an A/B test's preference duels only (dpo on
    the PREFERENCE dataset made from them), starting from what lap 1 left as the default model."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    command = [sys.executable, str(REPO / "bench" / "closed_loop.py"), "--smoke", "--data-dir", str(tmp_path)]
    command += ["--task", "lookup", "--recipes", "sft", "--laps", "2", "--signal", "preferences"]
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    output = run.stdout + run.stderr
    assert run.returncode == 0, output[-4000:]
    assert "closed loop on task 'lookup'" in output
    assert re.search(r"^-- lap 1: from smollm2-135m-instruct, signal: feedback$", output, re.M), output[-2000:]
    assert re.search(r"^-- lap 2: from \S+, signal: preference duels$", output, re.M), output[-2000:]
    duels = re.search(r"duels: (\d+), decisive (\d+), ties (\d+)", output)
    assert duels and int(duels[2]) >= 1 and int(duels[1]) == int(duels[2]) + int(duels[3]), output[-2000:]
    for recipe in ("sft", "dpo"):
        assert re.search(rf"^\s+{recipe}\s+[\d.]+%\s+[\d.]+%\s+[+-]\d+ pts\s+[\d.]+\s+[\d.]+$", output, re.M)
    assert len(re.findall(r"A/B: status \w+", output)) >= 4  # each lap's, printed as it ends and in the summary
    assert re.search(r"^\s+[\d.]+ s  lap 2: train dpo from the duels$", output, re.M), output[-2000:]
