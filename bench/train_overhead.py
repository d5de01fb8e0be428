"""Training throughput of our sft path against a plain TRL script, on the same data in the same run.

    python bench/train_overhead.py [--rows 64] [--steps 12] [--batch 8] [--rounds 2] [--threads N]

Both sides start from the same converted bundled model folder, train a LoRA adapter with the same
hyper-parameters (SFTConfig with the same values) on the same prompt/completion rows, and save the
adapter. Each side's time covers everything it does: loading the model, building the trainer,
training, saving. Tokens are the non-padding tokens the trainer fed through the model (TRL counts
them for both). The sides alternate for ``--rounds`` rounds, so drift in machine load hits both;
the median per side is reported.

Printed: tokens, seconds and tokens/s per run, and our overhead = 1 - ours/plain (target <= 10%).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from adaptive_engine.models_bundled import bundled_chat_model_dir  # noqa: E402
from adaptive_engine.recipe.training import LoraSettings, TrainSettings, train_sft  # noqa: E402

CITIES = ["Paris", "London", "Tokyo", "Madrid", "Berlin", "Rome", "Cairo", "Lima"]
NAMES = ["Alice", "Bob", "Carla", "David", "Emma", "Farid", "Grace", "Hugo"]


def make_rows(n: int) -> list[dict]:
    rows = []
    for i in range(n):
        name, city = NAMES[i % len(NAMES)], CITIES[(i * 3 + i // 8) % len(CITIES)]
        rows.append({
            "prompt": f"{name} lives in {city}. Reply with only a JSON object giving the city where {name} lives.",
            "completion": json.dumps({"city": city}),
        })
    return rows


def run_plain(model_dir: Path, rows: list[dict], settings: TrainSettings, out: Path) -> tuple[int, float]:
    """What a user would write with TRL directly (same hyper-parameters as ours)."""
    started = time.perf_counter()
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    data = Dataset.from_list([
        {"prompt": [{"role": "user", "content": r["prompt"]}],
         "completion": [{"role": "assistant", "content": r["completion"]}]}
        for r in rows
    ])
    lora = settings.lora
    assert lora is not None
    config = SFTConfig(
        output_dir=str(out / "scratch"), learning_rate=settings.learning_rate, max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size, max_length=settings.max_length, logging_steps=1,
        save_strategy="no", report_to=[], disable_tqdm=True, use_cpu=True, seed=settings.seed,
        gradient_checkpointing=settings.gradient_checkpointing, completion_only_loss=True,
    )
    trainer = SFTTrainer(
        model=model, args=config, train_dataset=data, processing_class=tokenizer,
        peft_config=LoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                               target_modules=lora.target_modules, task_type="CAUSAL_LM"),
    )
    trainer.train()
    trainer.model.save_pretrained(out / "adapter")
    tokens = int(trainer._total_train_tokens)
    return tokens, time.perf_counter() - started


def run_ours(model_dir: Path, rows: list[dict], settings: TrainSettings, out: Path) -> tuple[int, float]:
    started = time.perf_counter()
    metrics: list[dict] = []
    result = train_sft(model_dir, rows, out / "adapter", settings,
                       on_metrics=lambda step, values: metrics.append(values),
                       on_progress=lambda fraction, message: None, should_stop=lambda: False)
    return result.train_tokens, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()

    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    model_dir = bundled_chat_model_dir()
    rows = make_rows(args.rows)
    settings = TrainSettings(max_steps=args.steps, batch_size=args.batch, max_length=128,
                             lora=LoraSettings(r=16, alpha=32), device="cpu")
    print(f"torch threads {torch.get_num_threads()}; {args.rows} rows, {args.steps} steps of {args.batch}, "
          f"{args.rounds} rounds, model {model_dir.name}")
    results: dict[str, list[tuple[int, float]]] = {"plain": [], "ours": []}
    run_plain(model_dir, rows[:16], TrainSettings(max_steps=1, batch_size=2, device="cpu"),
              Path(tempfile.mkdtemp(prefix="warm-")))  # warm file caches and imports for both sides
    for round_ in range(args.rounds):
        order = [("plain", run_plain), ("ours", run_ours)]
        if round_ % 2:
            order.reverse()
        for name, fn in order:
            with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as scratch:
                tokens, seconds = fn(model_dir, rows, settings, Path(scratch))
            results[name].append((tokens, seconds))
            print(f"round {round_ + 1} {name:5s}: {tokens} tokens in {seconds:.1f} s = {tokens / seconds:.1f} tokens/s",
                  flush=True)
    rate = {name: statistics.median(t / s for t, s in runs) for name, runs in results.items()}
    overhead = 1 - rate["ours"] / rate["plain"]
    print(f"median tokens/s: plain TRL {rate['plain']:.1f}, ours {rate['ours']:.1f}; "
          f"overhead {overhead:+.1%} (target <= 10%)")


if __name__ == "__main__":
    main()
