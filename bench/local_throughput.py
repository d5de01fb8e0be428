"""Generated tokens/s of our local chat backends against plain llama.cpp, side by side, in one run.

    python bench/local_throughput.py [--max-tokens 48] [--concurrency 8] [--prompts 16] [--skip-transformers]

Plain llama.cpp is ``llama_cpp.Llama`` (llama-cpp-python, installed with the [local] extra) on the same Q4_1
GGUF with the same threads, one request after another (it serves one stream). Rows:

- one stream: greedy chat answers one at a time: plain llama.cpp, our llama.cpp backend, our transformers backend;
- N concurrent: our backends with N requests in flight (continuous batching);
- constrained: a JSON schema enforced (plain llama.cpp: its grammar from the schema; ours: llguidance);
- adapter: a LoRA adapter on the base (plain llama.cpp: ``lora_path``; ours: the converted GGUF LoRA;
  transformers: PEFT merged in memory). The adapter is a PEFT LoRA with random B matrices, as a trained one
  would move the logits; outputs are garbled, so the tokens/s of those rows count ``max_tokens`` answers.

Targets (issue 20): our llama.cpp backend >= 0.8x plain llama.cpp on one stream, and its N-concurrent aggregate
>= 2x plain llama.cpp's one stream.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

# As `adaptive-engine serve` runs it (set before torch loads): OpenMP threads that spin stall on shared cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from adaptive_engine import models_bundled  # noqa: E402
from adaptive_engine.server.inference.backends.base import (  # noqa: E402
    ChatMessage,
    GenerationParams,
    GenerationRequest,
)
from adaptive_engine.server.inference.backends.llamacpp import LlamaCppChatBackend  # noqa: E402
from adaptive_engine.server.inference.backends.local import (  # noqa: E402
    LocalChatBackend,
    LocalModelSpec,
    bundled_chat_spec,
)
from adaptive_engine.server.inference.grammar import json_grammar  # noqa: E402

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
SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string", "maxLength": 40}, "summary": {"type": "string"}},
    "required": ["title", "summary"],
    "additionalProperties": False,
}


def request(prompt: str, max_tokens: int, grammar: str | None = None) -> GenerationRequest:
    params = GenerationParams(temperature=0.0, max_tokens=max_tokens, grammar=grammar)
    return GenerationRequest(messages=[ChatMessage("user", prompt)], params=params)


async def ours(backend, prompts: list[str], max_tokens: int, concurrency: int, grammar=None) -> tuple[int, float]:
    queue = list(prompts)
    tokens = 0

    async def worker() -> None:
        nonlocal tokens
        while queue:
            result = await backend.generate(request(queue.pop(0), max_tokens, grammar))
            tokens += result.usage.completion_tokens

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return tokens, time.perf_counter() - start


def plain(llm, prompts: list[str], max_tokens: int, schema=None) -> tuple[int, float]:
    """Plain llama.cpp: its own chat completion, one request after another."""
    tokens = 0
    start = time.perf_counter()
    for prompt in prompts:
        extra = {"response_format": {"type": "json_object", "schema": schema}} if schema else {}
        out = llm.create_chat_completion(
            [{"role": "user", "content": prompt}], max_tokens=max_tokens, temperature=0.0, **extra
        )
        tokens += out["usage"]["completion_tokens"]
    return tokens, time.perf_counter() - start


def plain_llama(gguf: Path, threads: int, lora: Path | None = None):
    from llama_cpp import Llama

    return Llama(
        str(gguf), n_ctx=2048, n_threads=threads, n_threads_batch=threads, lora_path=lora and str(lora), verbose=False
    )


def make_adapter(folder: Path, base_dir: Path) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    adapted = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, init_lora_weights=False, target_modules=targets))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in adapted.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.02)
    adapted.save_pretrained(folder)
    return folder


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--prompts", type=int, default=16, help="requests per measurement")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--skip-transformers", action="store_true", help="leave out the transformers backend rows")
    args = parser.parse_args()
    prompts = (PROMPTS * (args.prompts // len(PROMPTS) + 1))[: args.prompts]
    few = prompts[: max(4, args.prompts // 4)]  # constrained and adapter rows: fewer requests

    cache_dir = models_bundled.default_cache_root() / models_bundled.BUNDLED_CHAT_KEY
    spec = bundled_chat_spec(str(cache_dir))
    gguf = Path(spec.path) / str(spec.gguf_file)
    work = Path(tempfile.mkdtemp(prefix="local-throughput-"))
    adapter = make_adapter(
        work / "adapter", models_bundled.convert_gguf(Path(spec.path), str(spec.gguf_file), cache_dir)
    )
    adapter_spec = LocalModelSpec(path=str(adapter), base=spec, cache_dir=str(work / "adapter-cache"))
    grammar = json_grammar(SCHEMA)
    rows: list[tuple[str, int, float]] = []

    def record(name: str, figures: tuple[int, float]) -> None:
        rows.append((name, *figures))
        print(f"  {name}: {figures[0] / figures[1]:.1f} tokens/s", flush=True)

    print(f"load average before: {os.getloadavg()}", flush=True)
    llm = plain_llama(gguf, args.threads)
    plain(llm, prompts[:1], 4)  # warm-up
    record("plain llama.cpp, one stream", plain(llm, prompts, args.max_tokens))
    record("plain llama.cpp, constrained", plain(llm, few, args.max_tokens, SCHEMA))
    del llm

    backend = LlamaCppChatBackend(spec, max_batch_rows=max(16, args.concurrency), threads=args.threads)
    await backend.load()
    await ours(backend, prompts[:2], 4, 2)  # warm-up
    record("ours llama.cpp, one stream", await ours(backend, prompts, args.max_tokens, 1))
    record(
        f"ours llama.cpp, {args.concurrency} concurrent",
        await ours(backend, prompts, args.max_tokens, args.concurrency),
    )
    await ours(backend, few[:1], 8, 1, grammar)  # the grammar tokenizer is built once
    record("ours llama.cpp, constrained", await ours(backend, few, args.max_tokens, 1, grammar))
    stats = backend.stats
    await backend.unload()
    adapted = LlamaCppChatBackend(adapter_spec, max_batch_rows=max(16, args.concurrency), threads=args.threads)
    await adapted.load()
    record("ours llama.cpp, adapter", await ours(adapted, few, args.max_tokens, 1))
    record(
        f"ours llama.cpp, adapter, {args.concurrency} concurrent",
        await ours(adapted, prompts, args.max_tokens, args.concurrency),
    )
    await adapted.unload()
    # plain llama.cpp with the same GGUF LoRA (the one our backend converted on load)
    llm = plain_llama(gguf, args.threads, lora=work / "adapter-cache" / "lora.gguf")
    record("plain llama.cpp, adapter", plain(llm, few, args.max_tokens))
    del llm

    if not args.skip_transformers:
        hf = LocalChatBackend(spec, max_batch_rows=max(16, args.concurrency))
        await hf.load()
        await ours(hf, prompts[:2], 4, 2)
        record("ours transformers, one stream", await ours(hf, few, args.max_tokens, 1))
        record(
            f"ours transformers, {args.concurrency} concurrent",
            await ours(hf, prompts, args.max_tokens, args.concurrency),
        )
        await ours(hf, few[:1], 8, 1, grammar)
        record("ours transformers, constrained", await ours(hf, few, args.max_tokens, 1, grammar))
        await hf.unload()

    base = rows[0][1] / rows[0][2]
    print(
        f"\n{args.prompts} requests ({len(few)} for constrained/adapter rows), max_tokens={args.max_tokens}, greedy, "
        f"{args.threads} threads; load average after: {os.getloadavg()}"
    )
    print(f"{'run':<42}{'tokens':>8}{'seconds':>10}{'tokens/s':>10}{'vs plain 1':>12}")
    for name, tokens, seconds in rows:
        print(f"{name:<42}{tokens:>8}{seconds:>10.2f}{tokens / seconds:>10.1f}{(tokens / seconds) / base:>11.2f}x")
    print(
        f"llama.cpp engine: largest batch {stats.max_batch_requests} requests; batched decode steps "
        f"{stats.batched_steps}/{stats.decode_steps}"
    )


if __name__ == "__main__":
    asyncio.run(main())
