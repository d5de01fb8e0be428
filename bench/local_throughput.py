"""Generated tokens/s of the local backend (continuous batching) at 1 and N concurrent requests,
against plain sequential ``model.generate`` on the same prompts, measured in the same run.

    python bench/local_throughput.py [--max-tokens 48] [--concurrency 8] [--rounds 1]

Target: >= 3x aggregate throughput at 8 concurrent requests over sequential generate.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

# As `adaptive-engine serve` runs it (set before torch loads): OpenMP threads that spin stall on shared cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from adaptive_engine.server.inference.backends.base import (  # noqa: E402
    ChatMessage,
    GenerationParams,
    GenerationRequest,
)
from adaptive_engine.server.inference.backends.local import LocalChatBackend, bundled_chat_spec  # noqa: E402

PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how rain forms, step by step.",
    "Describe a walk through a busy market.",
    "Write a letter to a friend about a summer trip.",
    "Explain why the sky is blue to a child.",
    "Describe the life of a honey bee.",
    "Write a poem about autumn leaves.",
    "Give advice to someone learning to cook.",
    "Describe a thunderstorm over the ocean.",
    "Tell the story of a robot who learns to paint.",
    "Explain how a bicycle works.",
    "Describe your ideal weekend.",
    "Write a fable about a fox and a crow.",
    "Explain what a volcano is.",
    "Describe a train journey through the mountains.",
    "Write a speech for a school graduation.",
]


def request(prompt: str, max_tokens: int) -> GenerationRequest:
    return GenerationRequest(
        messages=[ChatMessage("user", prompt)], params=GenerationParams(temperature=0.0, max_tokens=max_tokens)
    )


def sequential_generate(backend: LocalChatBackend, prompts: list[str], max_tokens: int) -> tuple[int, float]:
    """The baseline: transformers' own generate, one prompt at a time."""
    import torch

    model, tokenizer = backend.model, backend.tokenizer
    tokens = 0
    start = time.perf_counter()
    with torch.inference_mode():
        for prompt in prompts:
            ids = torch.tensor([backend.prompt_ids(request(prompt, max_tokens))], device=model.device)
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=max_tokens,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
            tokens += out.shape[1] - ids.shape[1]
    return tokens, time.perf_counter() - start


async def backend_run(
    backend: LocalChatBackend, prompts: list[str], max_tokens: int, concurrency: int
) -> tuple[int, float]:
    queue = list(prompts)
    tokens = 0

    async def worker():
        nonlocal tokens
        while queue:
            prompt = queue.pop(0)
            result = await backend.generate(request(prompt, max_tokens))
            tokens += result.usage.completion_tokens

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tokens, time.perf_counter() - start


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=16, help="requests per measurement")
    parser.add_argument("--cache-dir", default=None, help="converted weights (default: the shared model cache)")
    args = parser.parse_args()
    prompts = (PROMPTS * (args.prompts // len(PROMPTS) + 1))[: args.prompts]

    from adaptive_engine import models_bundled

    cache_dir = args.cache_dir or str(models_bundled.default_cache_root() / models_bundled.BUNDLED_CHAT_KEY)
    backend = LocalChatBackend(bundled_chat_spec(cache_dir), max_batch_rows=max(16, args.concurrency))
    t0 = time.perf_counter()
    await backend.load()
    print(f"model loaded in {time.perf_counter() - t0:.1f} s on {backend.model.device}")
    # warm up both paths
    sequential_generate(backend, prompts[:1], 4)
    await backend_run(backend, prompts[:2], 4, 2)

    base_tokens, base_s = sequential_generate(backend, prompts, args.max_tokens)
    one_tokens, one_s = await backend_run(backend, prompts, args.max_tokens, 1)
    many_tokens, many_s = await backend_run(backend, prompts, args.max_tokens, args.concurrency)
    stats = backend.stats
    await backend.unload()

    base = base_tokens / base_s
    rows = [
        ("sequential model.generate", base_tokens, base_s),
        ("engine, 1 concurrent", one_tokens, one_s),
        (f"engine, {args.concurrency} concurrent", many_tokens, many_s),
    ]
    print(f"{len(prompts)} requests, max_tokens={args.max_tokens}, greedy")
    print(f"{'run':<28}{'tokens':>8}{'seconds':>10}{'tokens/s':>10}{'vs generate':>13}")
    for name, tokens, seconds in rows:
        print(f"{name:<28}{tokens:>8}{seconds:>10.2f}{tokens / seconds:>10.1f}{(tokens / seconds) / base:>12.2f}x")
    print(
        f"largest batch: {stats.max_batch_requests} requests; batched decode steps: {stats.batched_steps}"
        f"/{stats.decode_steps}"
    )
    ratio = (many_tokens / many_s) / base
    print(f"ratio at {args.concurrency} concurrent vs sequential generate: {ratio:.2f}x (target >= 3x)")


if __name__ == "__main__":
    asyncio.run(main())
