"""The Ray executor against a real local Ray head started on loopback (skipped without the `ray` extra)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk import errors
from tests.jobs import recipes
from tests.jobs.helpers import upload, wait_for
from tests.support import LiveServer, free_port, make_settings

pytest.importorskip("ray.job_submission")


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port, dashboard = free_port(), free_port()
    temp = Path("/tmp") / f"ae-ray-{os.getpid()}"
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bindir + os.pathsep + os.environ.get("PATH", ""), "RAY_USAGE_STATS_ENABLED": "0"}
    log = open(tmp_path_factory.mktemp("ray") / "head.log", "wb")
    head = subprocess.Popen(
        [
            os.path.join(bindir, "ray"),
            "start",
            "--head",
            "--block",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            "--dashboard-host=127.0.0.1",
            f"--dashboard-port={dashboard}",
            "--include-dashboard=true",
            "--num-cpus=1",
            "--num-gpus=0",
            "--disable-usage-stats",
            f"--temp-dir={temp}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    address = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 240
        while True:
            assert head.poll() is None, "the Ray head exited"
            try:
                if httpx.get(f"{address}/api/version", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the Ray head did not come up"
            time.sleep(1)
        yield address
    finally:
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            try:
                os.killpg(head.pid, sig)
            except ProcessLookupError:
                break
            try:
                head.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        log.close()


def test_jobs_on_a_ray_cluster(ray_head: str, tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", ray_address=ray_head)
    with LiveServer(settings) as live, Adaptive(live.base_url, api_key=live.api_key) as sdk:
        pools = {p.key: p for p in sdk.compute_pools.list()}
        assert pools["ray"].executor == "ray" and pools["ray"].harmony_groups[0].url == ray_head
        sdk.use_cases.create("ray")
        sdk.set_default_use_case("ray")
        rows = tmp_path / "rows.jsonl"
        rows.write_text("\n".join(json.dumps({"prompt": f"q{i}"}) for i in range(4)))
        sdk.datasets.upload(str(rows), "rows")
        upload(sdk, tmp_path, recipes.WORKER, "worker")
        with pytest.raises(errors.ValidationError, match="exceeds the job partition of compute pool 'ray'"):
            sdk.jobs.run("worker", num_gpus=1, args={"dataset": "rows"}, compute_pool="ray")
        job = sdk.jobs.run(
            "worker", num_gpus=0, args={"dataset": "rows", "steps": 2, "model_key": "from-ray"}, compute_pool="ray"
        )
        done = wait_for(sdk, job.id, limit_s=300)
        assert done.status == "COMPLETED", done.error
        assert [m.step for m in done.metrics] == [0, 1]
        artifact = next(a for a in done.details.artifacts if a.kind == "EVALUATION")
        # The model folder was made on the cluster: it was sent to the server and registered from there.
        model_artifact = next(a for a in done.details.artifacts if a.kind == "MODEL")
        stored = Path(model_artifact.metadata["path"])
        assert stored.is_relative_to(live.settings.resolved_files_dir) and (stored / "config.json").is_file()
        assert "from-ray" in [s.key for s in sdk.use_cases.get().model_services]
        sdk.artifacts.download(artifact.id, str(tmp_path / "summary.json"))
        assert json.loads((tmp_path / "summary.json").read_text())["rows"] == 4
        assert "loaded 4 rows" in sdk.jobs.logs(job.id)

        upload(sdk, tmp_path, recipes.FAILING, "failing")
        failed = wait_for(sdk, sdk.jobs.run("failing", num_gpus=0, compute_pool="ray").id, limit_s=300)
        assert failed.status == "FAILED" and "ValueError: the data is not what I expected" in failed.error
