"""The garbage collector's share of the server's event loop under the logging load: passes per generation
and the seconds they took, counted with ``gc.callbacks`` inside the server while bench/ingest.py's REST load
runs (64 clients, an interaction with one inline feedback, then a feedback on it).

    PYTHONPATH=src python bench/ingest_gc.py [--seconds 8] [--databases sqlite,postgresql]

The server is ``adaptive-engine serve`` started through this script (``--serve``), which installs the
callbacks and writes what they counted so far on SIGUSR2 (``serve`` keeps SIGUSR1 for its stack dumps); the
figures are the difference between the reports before and after the measured window.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _serve(args: list[str], report: Path) -> None:
    """The server, with its collector observed: this process becomes ``adaptive-engine serve ARGS``."""
    passes = {0: [0, 0.0], 1: [0, 0.0], 2: [0, 0.0]}  # generation: [passes, thread seconds]
    pass_began = [0.0]

    def observe(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            pass_began[0] = time.thread_time()
        else:
            count = passes[info["generation"]]
            count[0] += 1
            count[1] += time.thread_time() - pass_began[0]

    def write_report(*_: object) -> None:
        snapshot = {
            "at": time.monotonic(),
            "passes": [n for n, _ in passes.values()],
            "seconds": [t for _, t in passes.values()],
            "thresholds": gc.get_threshold(),
            "frozen": gc.get_freeze_count(),
            "tracked": len(gc.get_objects()),
        }
        report.with_suffix(".tmp").write_text(json.dumps(snapshot))
        report.with_suffix(".tmp").replace(report)  # whole, never half-written

    gc.callbacks.append(observe)
    signal.signal(signal.SIGUSR2, write_report)
    sys.argv = ["adaptive-engine", *args]
    from adaptive_engine.cli.main import main

    main()


def measure(kind: str, seconds: float) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    import ingest
    from server_process import ServerProcess

    report = Path(tempfile.mkdtemp(prefix="ae-gc-")) / "report.json"
    pg_name, database_url = ingest.fresh_postgres() if kind == "postgresql" else (None, None)
    server = ServerProcess(
        Path(tempfile.mkdtemp(prefix="ae-bench-")),
        ingest.KEY,
        env={"ADAPTIVE_BUNDLED_MODELS": "false", "AE_GC_REPORT": str(report)},
        database_url=database_url,
        timeout_s=120,
        launcher=[str(Path(__file__).resolve()), "--serve"],
    )
    try:
        ingest.gql(
            server.url,
            "mutation($i: UseCaseCreate!) { createUseCase(input: $i) { id } }",
            {"i": {"key": "bench", "name": "bench"}},
        )
        ingest.gql(
            server.url,
            "mutation($i: MetricCreate!) { createMetric(input: $i) { id } }",
            {"i": {"key": "bench-ok", "name": "bench-ok", "kind": "BOOL"}},
        )
        asyncio.run(ingest.rest_load(server.url, "bench", "bench-ok", 8, 1.0))  # warm-up
        before = _report(server.proc.pid, report)
        events, errors, elapsed = asyncio.run(ingest.rest_load(server.url, "bench", "bench-ok", 64, seconds))
        after = _report(server.proc.pid, report)
    finally:
        server.stop()
        if pg_name:
            ingest.drop_postgres(pg_name)
    return {
        "events_per_s": events / elapsed,
        "errors": errors,
        "passes": [b - a for a, b in zip(before["passes"], after["passes"], strict=True)],
        "seconds": sum(after["seconds"]) - sum(before["seconds"]),
        "window_s": after["at"] - before["at"],
        **{k: after[k] for k in ("thresholds", "frozen", "tracked")},
    }


def _report(pid: int, report: Path) -> dict[str, Any]:
    """What the server's callbacks counted so far (it writes them on SIGUSR2)."""
    report.unlink(missing_ok=True)
    os.kill(pid, signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while not report.exists():
        if time.monotonic() > deadline:
            raise RuntimeError("the server wrote no garbage-collector report")
        time.sleep(0.05)
    return json.loads(report.read_text())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        _serve(sys.argv[2:], Path(os.environ["AE_GC_REPORT"]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--databases", default="sqlite,postgresql")
    options = parser.parse_args()
    print(
        f"garbage collector under the logging load: 64 clients, {options.seconds:.0f}s, load average "
        f"{os.getloadavg()[0]:.1f} at start"
    )
    print(
        f"{'database':<11} {'events/s':>9} {'gen0 passes':>12} {'gen1':>6} {'gen2':>6} {'GC seconds':>11} "
        f"{'share of the window':>20} {'tracked objects':>16}"
    )
    for kind in options.databases.split(","):
        r = measure(kind, options.seconds)
        gen0, gen1, gen2 = r["passes"]
        print(
            f"{kind:<11} {r['events_per_s']:>9.0f} {gen0:>12} {gen1:>6} {gen2:>6}"
            f" {r['seconds']:>11.2f} {r['seconds'] / r['window_s']:>19.1%} {r['tracked']:>16}"
            + (f"  ({r['errors']} errors)" if r["errors"] else "")
        )
    print(f"thresholds in the server: {tuple(r['thresholds'])}, frozen objects: {r['frozen']}")


if __name__ == "__main__":
    main()
