from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adaptive_engine import Adaptive

FINAL = {"COMPLETED", "FAILED", "CANCELED"}


def wait_for(client: Adaptive, job_id: str, statuses: set[str] = FINAL, limit_s: float = 180.0):
    """Poll until the job reaches one of ``statuses`` (fails the test past ``limit_s``, a safety net)."""
    deadline = time.monotonic() + limit_s
    while True:
        job = client.jobs.get(job_id)
        if job.status in statuses:
            return job
        assert time.monotonic() < deadline, f"job stuck in {job.status}: {job.error}"
        time.sleep(0.2)


def upload(client: Adaptive, tmp_path: Path, source: str, key: str):
    path = tmp_path / f"{key}.py"
    path.write_text(source)
    return client.recipes.upload(str(path), recipe_key=key)


@contextmanager
def job_key(client: Adaptive, server, tmp_path: Path, use_case: str) -> Iterator[tuple[str, Adaptive]]:
    """Run the KEY_HOLDER recipe on ``use_case`` and yield (job id, an SDK client with the job's own key);
    the job is canceled (its key revoked) afterwards."""
    from tests.jobs.recipes import KEY_HOLDER

    path = tmp_path / "key_holder.py"
    path.write_text(KEY_HOLDER)
    client.recipes.upload(str(path), recipe_key="key-holder", use_case=use_case)
    job = client.jobs.run("key-holder", num_gpus=0, use_case=use_case)
    key_file = server.app.state.job_runner.job_dir(uuid.UUID(job.id)) / "work" / "key"
    try:
        deadline = time.monotonic() + 180
        while not key_file.exists():
            status = client.jobs.get(job.id)
            assert status.status in ("PENDING", "RUNNING"), status.error
            assert time.monotonic() < deadline, "the job never wrote its key"
            time.sleep(0.2)
        with Adaptive(server.base_url, api_key=key_file.read_text()) as as_job:
            as_job.set_default_use_case(use_case)
            yield job.id, as_job
    finally:
        client.jobs.cancel(job.id)
        wait_for(client, job.id)
