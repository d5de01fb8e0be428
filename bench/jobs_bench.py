"""Figures for datasets and jobs (prints; no asserts).

    python bench/jobs_bench.py

1. Dataset validation: rows/s of the JSONL validator against a bare json.loads of the same lines
   (the floor: validation cannot be faster than parsing).
2. Job overhead: seconds from jobs.run to COMPLETED for a recipe that does nothing, against starting
   a bare Python process that imports the recipe runtime (the floor of a subprocess executor).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))


def bench_validation(rows: int = 50_000) -> None:
    from adaptive_engine.server.domains.datasets.formats import Validator

    lines = [
        json.dumps(
            {
                "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": f"question {i}"}],
                "completion": f"answer {i}",
                "feedback": {"quality": i % 5 / 4},
            }
        ).encode()
        for i in range(rows)
    ]
    start = time.perf_counter()
    for line in lines:
        json.loads(line)
    parse = time.perf_counter() - start
    start = time.perf_counter()
    validator = Validator()
    for line in lines:
        validator.feed(line)
    summary = validator.finish()
    validate = time.perf_counter() - start
    print(
        f"dataset validation: {rows / validate:,.0f} rows/s ({summary.kind}); json.loads alone"
        f" {rows / parse:,.0f} rows/s;"
        f" validation costs {validate / parse:.2f}x parsing"
    )


def bench_jobs(count: int = 5) -> None:
    from adaptive_engine import Adaptive
    from tests.jobs import recipes
    from tests.jobs.helpers import upload, wait_for
    from tests.support import LiveServer, make_settings

    floor = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", "import adaptive_engine.recipe.loader"],
            check=True,
            env={"PYTHONPATH": str(ROOT / "src")},
        )
        floor.append(time.perf_counter() - start)
    with (
        tempfile.TemporaryDirectory() as tmp,
        LiveServer(make_settings(Path(tmp) / "data", job_poll_interval_s=0.1)) as live,
    ):
        with Adaptive(live.base_url, api_key=live.api_key) as sdk:
            sdk.use_cases.create("bench")
            sdk.set_default_use_case("bench")
            upload(sdk, Path(tmp), recipes.QUICK, "quick")
            took = []
            for i in range(count):
                start = time.perf_counter()
                job = sdk.jobs.run("quick", num_gpus=0, args={"n": i})
                wait_for(sdk, job.id)
                took.append(time.perf_counter() - start)
    best_floor, median = min(floor), sorted(took)[len(took) // 2]
    print(
        f"job overhead: median {median:.2f} s from run to COMPLETED over {count} jobs;"
        f" bare process with the runtime {best_floor:.2f} s; ratio {median / best_floor:.1f}x"
    )


if __name__ == "__main__":
    bench_validation()
    bench_jobs()
