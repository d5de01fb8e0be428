"""Training throughput of our ``sft`` job against a plain TRL script, on the same data in the same run.

    python bench/train_overhead.py [--rounds 3] [--rows 64] [--steps 10] [--batch 8]

Three ways to train the same LoRA adapter (same rows, same hyper-parameters, same seed) on the bundled
model, each in a fresh process:
- ``plain``: what a user would write with TRL directly (SFTConfig + SFTTrainer, then save);
- ``core``:  our training core (``train_sft``) called from a script, without the platform;
- ``job``:   the built-in ``sft`` recipe run as a job by a real server: rows read from an uploaded
  dataset, weights resolved through the model registry, progress and metrics posted every step,
  the adapter registered as a model at the end.
Each round runs the three once, in a rotated order, so that drift in machine load (other programs on
the same cores) hits every side alike. Per run: tokens (the non-padding tokens fed to the model, as
TRL counts them), seconds end to end (process start or job submission to exit or COMPLETED) and seconds
of the training loop. Overhead = 1 - rate(side) / rate(plain), computed within each round, then the
median and the spread (min..max) over rounds. Target: <= 10% for the job.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

CITIES = ["Paris", "London", "Tokyo", "Madrid", "Berlin", "Rome", "Cairo", "Lima"]
NAMES = ["Alice", "Bob", "Carla", "David", "Emma", "Farid", "Grace", "Hugo"]
LORA_R, LORA_ALPHA, LEARNING_RATE, MAX_LENGTH, SEED = 16, 32, 2e-4, 128, 0


def make_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        name, city = NAMES[i % len(NAMES)], CITIES[(i * 3 + i // 8) % len(CITIES)]
        rows.append(
            {
                "prompt": f"{name} lives in {city}. Reply with only a JSON object giving the city where {name} lives.",
                "completion": json.dumps({"city": city}),
            }
        )
    return rows


# ------------------------------------------------------------------------------------ one run per process


def run_plain(model_dir: Path, rows: list[dict], steps: int, batch: int, out: Path) -> dict[str, Any]:
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    data = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": r["prompt"]}],
                "completion": [{"role": "assistant", "content": r["completion"]}],
            }
            for r in rows
        ]
    )
    config = SFTConfig(
        output_dir=str(out / "scratch"),
        learning_rate=LEARNING_RATE,
        max_steps=steps,
        per_device_train_batch_size=batch,
        max_length=MAX_LENGTH,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        disable_tqdm=True,
        use_cpu=True,
        seed=SEED,
        completion_only_loss=True,
        bf16=False,  # SFTConfig defaults to bf16 autocast; ours trains in float32 on a CPU: same precision here
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=data,
        processing_class=tokenizer,
        peft_config=LoraConfig(
            r=LORA_R, lora_alpha=LORA_ALPHA, lora_dropout=0.05, target_modules="all-linear", task_type="CAUSAL_LM"
        ),
    )
    started = time.perf_counter()
    trainer.train()
    train_s = time.perf_counter() - started
    trainer.model.save_pretrained(out / "adapter")
    tokens = max((int(e["num_tokens"]) for e in trainer.state.log_history if "num_tokens" in e), default=0)
    return {"tokens": tokens, "train_s": train_s, "steps": trainer.state.global_step}


def run_core(model_dir: Path, rows: list[dict], steps: int, batch: int, out: Path) -> dict[str, Any]:
    from adaptive_engine.recipe.training import LoraSettings, TrainSettings, train_sft

    settings = TrainSettings(
        max_steps=steps,
        batch_size=batch,
        max_length=MAX_LENGTH,
        learning_rate=LEARNING_RATE,
        seed=SEED,
        lora=LoraSettings(r=LORA_R, alpha=LORA_ALPHA),
        device="cpu",
    )
    result = train_sft(
        model_dir,
        rows,
        out / "adapter",
        settings,
        on_metrics=lambda step, values: None,
        on_progress=lambda fraction, message: None,
    )
    return {"tokens": result.train_tokens, "train_s": result.seconds, "steps": result.steps}


def child(side: str, model_dir: str, rows: int, steps: int, batch: int) -> None:
    """Runs in its own process; prints one JSON line. Its wall clock starts at the parent's spawn."""
    fn = {"plain": run_plain, "core": run_core}[side]
    with tempfile.TemporaryDirectory(prefix=f"overhead-{side}-") as scratch:
        result = fn(Path(model_dir), make_rows(rows), steps, batch, Path(scratch))
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print("RESULT " + json.dumps({**result, "cpu_s": usage.ru_utime + usage.ru_stime}), flush=True)


def spawn(side: str, model_dir: Path, args: argparse.Namespace, env: dict[str, str]) -> dict[str, Any]:
    started = time.perf_counter()
    run = subprocess.run(
        [
            sys.executable,
            __file__,
            "--child",
            side,
            "--model-dir",
            str(model_dir),
            "--rows",
            str(args.rows),
            "--steps",
            str(args.steps),
            "--batch",
            str(args.batch),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    line = next((ln for ln in run.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if run.returncode != 0 or line is None:
        raise RuntimeError(f"{side} run failed:\n{run.stdout[-2000:]}\n{run.stderr[-4000:]}")
    return {**json.loads(line[len("RESULT ") :]), "wall_s": wall}


# ------------------------------------------------------------------------------------ the job side


class JobSide:
    """A real server (no bundled models loaded: nothing serves while we measure), the base model registered
    from the same folder, the rows uploaded as a dataset; each run is one ``sft`` job."""

    def __init__(self, model_dir: Path, args: argparse.Namespace, env: dict[str, str]) -> None:
        from server_process import ServerProcess

        from adaptive_engine import Adaptive

        self.args = args
        self.data_dir = Path(tempfile.mkdtemp(prefix="train-overhead-"))
        key = "train-overhead-admin-key"
        self.server = ServerProcess(
            self.data_dir, key, env={**env, "ADAPTIVE_BUNDLED_MODELS": "false"}, log_path=self.data_dir / "server.log"
        )
        base_url = self.server.url
        self.client = Adaptive(base_url, api_key=key, timeout_secs=None)
        self.client.use_cases.create(key="overhead")
        self.client.set_default_use_case("overhead")
        self.client.models.add_local(str(model_dir), name="base", key="base")
        rows_path = self.data_dir / "rows.jsonl"
        rows_path.write_text("\n".join(json.dumps(r) for r in make_rows(args.rows)))
        self.client.datasets.upload(str(rows_path), "rows")
        deadline = time.monotonic() + 300
        while "sft" not in {r.key for r in self.client.recipes.list()}:
            if time.monotonic() > deadline:
                raise RuntimeError("the built-in sft recipe was not registered")
            time.sleep(0.5)
        self.runs = 0

    def run(self) -> dict[str, Any]:
        import re

        self.runs += 1
        started = time.perf_counter()
        job = self.client.jobs.run(
            "sft",
            num_gpus=0,
            args={
                "output_model_key": f"overhead-{self.runs}",
                "base_model": "base",
                "dataset": "rows",
                "max_steps": self.args.steps,
                "batch_size": self.args.batch,
                "max_length": MAX_LENGTH,
                "learning_rate": LEARNING_RATE,
                "lora_rank": LORA_R,
                "lora_alpha": LORA_ALPHA,
                "seed": SEED,
            },
        )
        while True:
            job = self.client.jobs.get(job.id)
            if job.status in ("COMPLETED", "FAILED", "CANCELED"):
                break
            time.sleep(0.2)
        wall = time.perf_counter() - started
        if job.status != "COMPLETED":
            raise RuntimeError(f"sft job {job.status}: {job.error}")
        # The recipe logs "sft: N steps, T tokens in S s (R tokens/s)" from its training result.
        found = re.search(r"sft: (\d+) steps, (\d+) tokens in ([\d.]+)s", self.client.jobs.logs(job.id))
        if found is None:
            raise RuntimeError("the sft job's log has no training summary")
        return {
            "steps": int(found.group(1)),
            "tokens": int(found.group(2)),
            "train_s": float(found.group(3)),
            "wall_s": wall,
            "cpu_s": float("nan"),
        }

    def close(self) -> None:
        self.client.close()
        self.server.stop()


# ------------------------------------------------------------------------------------ report


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):+6.1%}  ({min(values):+.1%} .. {max(values):+.1%})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (plain, core, job) in rotated order")
    parser.add_argument("--sides", default="plain,core,job")
    parser.add_argument("--child", choices=["plain", "core"], help=argparse.SUPPRESS)
    parser.add_argument("--model-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.model_dir, args.rows, args.steps, args.batch)
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    from adaptive_engine.models_bundled import bundled_chat_model_dir

    model_dir = bundled_chat_model_dir()
    # Every side gets the environment the server gives its jobs (the server sets OMP_WAIT_POLICY itself).
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_WAIT_POLICY": "PASSIVE"}
    sides = [s for s in args.sides.split(",") if s]
    assert "plain" in sides, "plain is the baseline"
    print(
        f"{os.cpu_count()} CPUs, load average {'/'.join(f'{x:.1f}' for x in os.getloadavg())}; "
        f"{args.rows} rows, {args.steps} steps of {args.batch}, {args.rounds} rounds, sides {sides}",
        flush=True,
    )
    job_side = JobSide(model_dir, args, env) if "job" in sides else None
    results: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
    try:
        spawn("plain", model_dir, argparse.Namespace(rows=16, steps=1, batch=2), env)  # warm the file cache
        for round_ in range(args.rounds):
            order = sides[round_ % len(sides) :] + sides[: round_ % len(sides)]
            for side in order:
                result = job_side.run() if side == "job" else spawn(side, model_dir, args, env)  # type: ignore[union-attr]
                results[side].append(result)
                print(
                    f"round {round_ + 1} {side:5s}: {result['tokens']} tokens, {result['steps']} steps; "
                    f"end to end {result['wall_s']:6.1f} s = {result['tokens'] / result['wall_s']:6.1f} tokens/s; "
                    f"training loop {result['train_s']:6.1f} s = {result['tokens'] / result['train_s']:6.1f} tokens/s"
                    f"  (load {os.getloadavg()[0]:.1f})",
                    flush=True,
                )
    finally:
        if job_side is not None:
            job_side.close()

    print(
        f"\noverhead vs plain TRL, per round then median (min .. max over {args.rounds} rounds); "
        "1 - rate(side) / rate(plain):"
    )
    for side in [s for s in sides if s != "plain"]:
        for what, key in (("end to end", "wall_s"), ("training loop", "train_s")):
            per_round = [
                1 - (r[side]["tokens"] / r[side][key]) / (r["plain"]["tokens"] / r["plain"][key])
                for r in ({s: results[s][i] for s in sides} for i in range(args.rounds))
            ]
            print(f"   {side:5s} {what:14s} {spread(per_round)}")
    for side in sides:
        rates = [r["tokens"] / r["wall_s"] for r in results[side]]
        print(
            f"   {side:5s} end-to-end tokens/s: median {statistics.median(rates):.1f} "
            f"({min(rates):.1f} .. {max(rates):.1f})"
        )
    print(f"load average at the end {'/'.join(f'{x:.1f}' for x in os.getloadavg())} (target: job overhead <= 10%)")


if __name__ == "__main__":
    main()
