"""Sampling for online training (grpo) with llama.cpp on the base model's GGUF file, the policy's LoRA applied.

TRL samples with ``model.generate`` on the unmerged LoRA model in float32, which was most of a grpo step on a
CPU. Here the quantized base runs in llama.cpp and the adapter being trained is written as a GGUF LoRA (in
memory to file, no PEFT folder) and applied whenever the weights changed. The base weights are the same ones
training uses (the transformers copy is the GGUF dequantized), so the samples come from the same policy up to
llama.cpp's arithmetic. Each prompt is prefilled once and its cells shared by the completions sampled for it;
every running completion is decoded in one ``llama_decode`` batch.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from adaptive_engine import gguf_lora
from adaptive_engine.llamacpp_runtime import LlamaCppRuntime

# KV cells of the context (about 23 KB each for the bundled 135M model): a round of grpo sampling is cut into
# chunks whose prompts and completions fit.
CELLS = 8192
SEQUENCES = 64


class LlamaCppSampler:
    """Completions as token ids from llama.cpp; :meth:`set_adapter` swaps the LoRA between rounds."""

    def __init__(self, gguf_file: Path, *, threads: int | None = None) -> None:
        self.runtime = LlamaCppRuntime(
            gguf_file, cells=CELLS, sequences=SEQUENCES, threads=threads or len(os.sched_getaffinity(0))
        )
        self.layout = self.runtime.layout()
        self._scratch = tempfile.TemporaryDirectory(prefix="grpo-lora-")
        self.adapters = 0  # adapters applied so far

    def close(self) -> None:
        self.runtime.close()
        self._scratch.cleanup()

    def set_adapter(self, config: Mapping[str, Any], weights: Mapping[str, Any]) -> None:
        """Apply the LoRA of PEFT ``config`` and state dict ``weights`` in place of the previous one. Raises
        :class:`~adaptive_engine.gguf_lora.LoraNotConvertible` for what a GGUF LoRA cannot express."""
        path = Path(self._scratch.name) / "lora.gguf"
        gguf_lora.convert_weights(dict(config), dict(weights), self.layout, path)
        self.runtime.apply_lora(path)  # llama.cpp holds the tensors now; the file is rewritten next time
        self.adapters += 1

    def sample(
        self,
        prompt_ids: Sequence[Sequence[int]],
        *,
        temperature: float,
        top_p: float,
        max_tokens: int,
        stop_ids: Sequence[int],
        generator: Any,
    ) -> list[list[int]]:
        """One completion per entry of ``prompt_ids`` (equal prompts share one prefill), ending with its stop token
        when it stopped before ``max_tokens``; sampled with ``generator`` (a seeded torch.Generator)."""
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, ids in enumerate(prompt_ids):
            groups.setdefault(tuple(ids), []).append(i)
        out: list[list[int]] = [[] for _ in prompt_ids]
        chunk: list[tuple[tuple[int, ...], list[int]]] = []
        used = 0
        for prompt, rows in groups.items():
            need = len(prompt) + len(rows) * max_tokens
            if need > self.runtime.cells or len(rows) > self.runtime.sequences:
                raise ValueError(f"{len(rows)} completions of a {len(prompt)}-token prompt do not fit the context")
            if chunk and (used + need > self.runtime.cells or sum(len(r) for _, r in chunk) + len(rows) > SEQUENCES):
                self._sample_chunk(chunk, out, temperature, top_p, max_tokens, set(stop_ids), generator)
                chunk, used = [], 0
            chunk.append((prompt, rows))
            used += need
        if chunk:
            self._sample_chunk(chunk, out, temperature, top_p, max_tokens, set(stop_ids), generator)
        return out

    def _sample_chunk(
        self,
        chunk: list[tuple[tuple[int, ...], list[int]]],
        out: list[list[int]],
        temperature: float,
        top_p: float,
        max_tokens: int,
        stops: set[int],
        generator: Any,
    ) -> None:
        import numpy
        import torch

        runtime = self.runtime
        runtime.clear()
        entries: list[tuple[int, int, int, bool]] = []
        seqs: list[int] = []  # per running row: its sequence, position of its next token, index in ``out``
        positions: list[int] = []
        targets: list[int] = []
        for prompt, rows in chunk:
            first = len(seqs)
            entries.extend((token, pos, first, pos == len(prompt) - 1) for pos, token in enumerate(prompt))
            for target in rows:
                seqs.append(len(seqs))
                positions.append(len(prompt))
                targets.append(target)
        per_prompt = runtime.decode(entries)
        at, rows_logits = 0, []
        for (_, rows), logits in zip(chunk, per_prompt, strict=True):
            for seq in range(at + 1, at + len(rows)):  # the other completions share the prompt's cells
                runtime.copy_sequence(at, seq)
            rows_logits.extend([logits] * len(rows))
            at += len(rows)
        logits = torch.from_numpy(numpy.stack(rows_logits))
        try:
            while True:
                tokens = draw(logits, temperature, top_p, generator).tolist()
                keep = []
                for r, token in enumerate(tokens):
                    generated = out[targets[r]]
                    generated.append(token)
                    if token in stops or len(generated) >= max_tokens:
                        runtime.drop_sequence(seqs[r])
                    else:
                        keep.append(r)
                if not keep:
                    return
                step = [(tokens[r], positions[r], seqs[r], True) for r in keep]
                seqs = [seqs[r] for r in keep]
                positions = [positions[r] + 1 for r in keep]
                targets = [targets[r] for r in keep]
                logits = torch.from_numpy(numpy.stack(runtime.decode(step)))
        finally:
            runtime.clear()


def draw(logits: Any, temperature: float, top_p: float, generator: Any) -> Any:
    """One token per row: greedy at temperature 0, else sampled from softmax(logits / temperature) cut to the
    smallest head of probability ``top_p``."""
    import torch

    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        cut = sorted_probs.cumsum(-1) - sorted_probs >= top_p
        sorted_probs[cut] = 0.0
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]
