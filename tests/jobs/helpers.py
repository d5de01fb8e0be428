from __future__ import annotations

import time
from pathlib import Path

from adaptive_engine import Adaptive

FINAL = {"COMPLETED", "FAILED", "CANCELED"}


def wait_for(client: Adaptive, job_id: str, statuses: set[str] = FINAL, limit_s: float = 180.0):  # noqa: ANN201
    """Poll until the job reaches one of ``statuses`` (fails the test past ``limit_s``, a safety net)."""
    deadline = time.monotonic() + limit_s
    while True:
        job = client.jobs.get(job_id)
        if job.status in statuses:
            return job
        assert time.monotonic() < deadline, f"job stuck in {job.status}: {job.error}"
        time.sleep(0.2)


def upload(client: Adaptive, tmp_path: Path, source: str, key: str):  # noqa: ANN201
    path = tmp_path / f"{key}.py"
    path.write_text(source)
    return client.recipes.upload(str(path), recipe_key=key)
