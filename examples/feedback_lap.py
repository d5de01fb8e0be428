"""One lap of the loop from a use case's recent feedback, through the SDK: a script a scheduler can run.

    python examples/feedback_lap.py --url http://127.0.0.1:8000 --api-key $KEY --use-case support \
        --feedback-key resolved --heldout support-heldout --grader resolved-check

A lap, from the model the use case serves by default now (the "current" model):
 1. train a new model from the current model's logged traffic and its feedback: ``sft`` on the interactions
    scored >= ``--min-value`` (default), or ``dpo`` on pairs of the same prompt scored differently
    (``--recipe dpo``; ``--min-margin`` for noisy feedback);
 2. with ``--heldout`` and ``--grader``: an ``eval`` job of both models on the held-out dataset; the lap stops
    here, promoting nothing, unless the new model scores higher;
 3. an A/B test of the current model against the new one on the same feedback key, with auto-deploy: the use
    case's live traffic and the feedback people give on it decide, and the winner becomes the default model,
    which the next lap starts from.

A lap never stacks on an undecided one: if the previous lap's A/B test is still running, it says so and
stops. Run it as often as feedback accumulates (a cron entry, a CI schedule); each run prints what it did.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from adaptive_engine import Adaptive

AB_PREFIX = "lap-"


def wait_job(client: Adaptive, job_id: str) -> Any:
    while True:
        job = client.jobs.get(job_id)
        if job.status in ("COMPLETED", "FAILED", "CANCELED"):
            if job.status != "COMPLETED":
                sys.exit(f"job {job.name or job.id} {job.status}: {job.error}")
            return job
        time.sleep(2.0)


def held_out_rates(client: Adaptive, models: list[str], dataset: str, grader: str) -> dict[str, float]:
    """Mean grader score per model on the held-out dataset, from the eval job's EVALUATION artifact."""
    job = wait_job(
        client,
        client.jobs.run("eval", num_gpus=0, args={"models": models, "dataset": dataset, "graders": [grader]}).id,
    )
    artifact = next(a for a in job.details.artifacts if a.kind == "EVALUATION")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "evaluation.json"
        client.artifacts.download(artifact.id, str(path))
        report = json.loads(path.read_text())
    return {model: grades[grader]["mean"] or 0.0 for model, grades in report["aggregates"].items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True)
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--use-case", required=True)
    parser.add_argument("--feedback-key", required=True, help="the feedback that says what is good")
    parser.add_argument("--recipe", choices=["sft", "dpo"], default="sft")
    parser.add_argument("--min-value", type=float, default=1.0, help="sft: keep interactions scored >= this")
    parser.add_argument("--min-margin", type=float, default=None, help="dpo: pair only scores this far apart")
    parser.add_argument("--heldout", help="a held-out dataset of prompts, to check the new model before the A/B")
    parser.add_argument("--grader", help="the grader that scores the held-out answers")
    parser.add_argument("--limit", type=int, default=2000, help="most logged interactions to learn from")
    parser.add_argument("--max-steps", type=int, default=None, help="bound the training (optimizer steps)")
    args = parser.parse_args()
    if (args.heldout is None) != (args.grader is None):
        parser.error("--heldout and --grader go together")

    client = Adaptive(args.url, api_key=args.api_key, timeout_secs=None)
    client.set_default_use_case(args.use_case)
    running = [t for t in client.ab_tests.list(active=True) if t.key.startswith(AB_PREFIX)]
    if running:
        print(f"the previous lap's A/B test {running[0].key} has not decided yet: nothing to do")
        return
    current = next(s.key for s in client.use_cases.get().model_services if s.is_default)
    new = f"{args.use_case}-{args.recipe}-{time.strftime('%Y%m%d-%H%M%S')}"
    print(f"lap: from {current} (the default model), {args.recipe} on its feedback '{args.feedback_key}' -> {new}")

    if args.recipe == "sft":
        train_args: dict[str, Any] = {
            "feedback_filter": {
                "feedback_key": args.feedback_key,
                "min_value": args.min_value,
                "models": [current],
                "limit": args.limit,
            }
        }
    else:
        train_args = {"feedback_key": args.feedback_key, "pairs_from_metric": True, "limit": args.limit}
        if args.min_margin is not None:
            train_args["min_margin"] = args.min_margin
    if args.max_steps is not None:
        train_args["max_steps"] = args.max_steps
    job = client.jobs.run(args.recipe, num_gpus=0, args={"output_model_key": new, "base_model": current, **train_args})
    wait_job(client, job.id)
    print(f"trained {new}")

    if args.heldout:
        rates = held_out_rates(client, [current, new], args.heldout, args.grader)
        print(f"held-out {args.grader}: {current} {rates[current]:.1%}, {new} {rates[new]:.1%}")
        if rates[new] <= rates[current]:
            print("the new model is not better on the held-out set: no A/B test, the default model stays")
            return

    ab_key = f"{AB_PREFIX}{new}"
    client.ab_tests.create(ab_key, args.feedback_key, [current, new], auto_deploy=True)
    print(f"A/B test {ab_key} started: live traffic and its '{args.feedback_key}' feedback decide; the winner")
    print("becomes the default model (client.ab_tests.get(key) shows the report)")


if __name__ == "__main__":
    main()
