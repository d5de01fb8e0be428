"""Local chat models served by llama.cpp (``llama-cpp-python``): GGUF weights run as they are, quantized, and
every running sequence is decoded in one ``llama_decode`` batch of one context.

Only the model steps change. :class:`LlamaCppChatBackend` is a :class:`~.local.LocalChatBackend` and
:class:`LlamaCppEngine` a :class:`~..batching.BatchEngine`: request checks, the chat template, sampling with
per-request seeds, ``n``, stop sequences, streaming, usage, regex constraints, JSON-schema grammars, log
probabilities and tool calls are the transformers backend's own code, fed with llama.cpp's logits. The
model's Hugging Face tokenizer (read from the GGUF file) makes the prompt ids, so both backends see the same
prompt.

Each choice of each request owns one llama.cpp sequence (a slot). The KV cache is unified: a request's
``n`` choices share its prompt's cells (``llama_memory_seq_cp``), so the cache budget counts a prompt once.
A trained PEFT LoRA adapter is converted once to a GGUF LoRA (``gguf_lora.py``) and applied to the context;
what cannot be converted is served by the transformers backend (see :func:`cannot_serve`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from pathlib import Path
from typing import Any

from adaptive_engine import gguf_lora, llamacpp_runtime, models_bundled

from .base import BackendError, BackendLoadError, BackendNotReady
from .local import _LOADING, LocalChatBackend, LocalModelSpec, _import_batching

log = logging.getLogger(__name__)

# KV cells of a context when the model's compute config sets no kv_cache_len: about 190 MB for the bundled
# 135M model (23 KB a token), one full 8k context or e.g. 32 sequences of 256 tokens.
DEFAULT_KV_CELLS = 8192


def gguf_source(spec: LocalModelSpec) -> tuple[Path, Path | None]:
    """(the GGUF weights, the PEFT adapter folder or None) of ``spec``; ValueError says why there are none."""
    folder = Path(spec.path)
    if (folder / "adapter_config.json").is_file():
        if spec.base is None or spec.base.gguf_file is None:
            raise ValueError("the adapter's base model is not a GGUF file")
        return Path(spec.base.path) / spec.base.gguf_file, folder
    if spec.gguf_file is None:
        raise ValueError("the model is not a GGUF file")
    return folder / spec.gguf_file, None


def cannot_serve(spec: LocalModelSpec) -> str | None:
    """Why llama.cpp cannot serve ``spec`` (the transformers backend does then), or None when it can."""
    if not llamacpp_runtime.available():
        return "llama-cpp-python is not installed"
    try:
        weights, adapter = gguf_source(spec)
        if adapter is not None:
            gguf_lora.check_config(json.loads((adapter / "adapter_config.json").read_text()))
            arch = gguf_lora.architecture(weights)
            if arch not in gguf_lora.ARCHITECTURES:
                raise ValueError(f"LoRA adapters on base architecture {arch!r} (handled: llama)")
    except (ValueError, OSError) as exc:
        return str(exc)
    return None


def _import_engine() -> Any:
    """The engine module (it imports torch: loaded with the first model, not with the server)."""
    with _LOADING:  # torch's first import too, away from another model's load (see _LOADING)
        _import_batching()  # the [local] extra's hint when torch is missing
        from .. import batching_llamacpp

    return batching_llamacpp


def load_tokenizer(spec: LocalModelSpec) -> Any:
    """The Hugging Face tokenizer (and chat template) of ``spec``: an adapter's own when it saved one, else the
    converted cache's when there is one, else read from the GGUF file."""
    folder = Path(spec.path)
    with _LOADING:  # the first import of transformers included: two threads importing it at once can fail
        from transformers import AutoTokenizer

        if (folder / "tokenizer_config.json").is_file():
            return AutoTokenizer.from_pretrained(folder)
        base = spec.base if (folder / "adapter_config.json").is_file() and spec.base is not None else spec
        if base.gguf_file is None:
            return AutoTokenizer.from_pretrained(base.path)
        source = Path(base.path) / base.gguf_file
        if base.cache_dir is not None and models_bundled.cache_is_valid(Path(base.cache_dir), source):
            return AutoTokenizer.from_pretrained(base.cache_dir)
        return AutoTokenizer.from_pretrained(base.path, gguf_file=base.gguf_file)


class LlamaCppRuntime(llamacpp_runtime.LlamaCppRuntime):
    """The shared llama.cpp context (``adaptive_engine.llamacpp_runtime``), raising the backends' errors."""

    def __init__(self, weights: Path, *, cells: int, sequences: int, threads: int) -> None:
        try:
            super().__init__(weights, cells=cells, sequences=sequences, threads=threads)
        except llamacpp_runtime.LlamaCppLoadError as exc:
            raise BackendLoadError(str(exc)) from None

    def apply_lora(self, lora: Path) -> None:
        try:
            super().apply_lora(lora)
        except llamacpp_runtime.LlamaCppLoadError as exc:
            raise BackendLoadError(str(exc)) from None

    def decode(self, entries: list[tuple[int, int, int, bool]]) -> list[Any]:
        try:
            return super().decode(entries)
        except llamacpp_runtime.LlamaCppLoadError as exc:
            raise BackendLoadError(str(exc)) from None
        except llamacpp_runtime.LlamaCppDecodeError as exc:
            raise BackendError(str(exc)) from None


class LlamaCppChatBackend(LocalChatBackend):
    """A GGUF chat model (or a LoRA adapter on one) served by llama.cpp with continuous batching."""

    def __init__(self, spec: LocalModelSpec, *, threads: int | None = None, **kwargs: Any) -> None:
        super().__init__(spec, **kwargs)
        # All the cores this process may use: llama.cpp's threads do the whole decode step.
        self.threads = threads or len(os.sched_getaffinity(0))

    async def _make_engine(self) -> Any:
        try:
            weights, adapter = gguf_source(self.spec)
        except ValueError as exc:
            raise BackendLoadError(f"llama.cpp cannot serve model {self.name}: {exc}") from None
        if not weights.is_file():
            raise BackendLoadError(f"GGUF file not found: {weights}")
        engine_module = await asyncio.to_thread(_import_engine)
        self.tokenizer = await asyncio.to_thread(load_tokenizer, self.spec)
        cells = self.kv_cache_len or DEFAULT_KV_CELLS
        runtime = await asyncio.to_thread(
            LlamaCppRuntime, weights, cells=cells, sequences=self.max_batch_rows, threads=self.threads
        )
        try:
            if adapter is not None:
                await asyncio.to_thread(self._apply_adapter, runtime, adapter, weights)
        except BaseException:
            runtime.close()
            raise
        self.model = runtime
        eos = set(runtime.eog)
        if self.tokenizer.eos_token_id is not None:
            eos.add(int(self.tokenizer.eos_token_id))
        return engine_module.LlamaCppEngine(
            runtime,
            self.tokenizer,
            eos_token_ids=sorted(eos),
            # rows beyond the context's sequences wait, like rows beyond max_batch_rows
            max_batch_rows=min(self.max_batch_rows, runtime.sequences),
            max_cache_tokens=self.kv_cache_len,
            name=self.name,
        )

    def _apply_adapter(self, runtime: LlamaCppRuntime, adapter: Path, weights: Path) -> None:
        if self.spec.cache_dir is None:
            raise BackendLoadError("a LoRA adapter served by llama.cpp needs a cache directory for its GGUF form")
        try:
            lora = gguf_lora.cached_lora(adapter, weights, runtime.layout(), Path(self.spec.cache_dir))
        except gguf_lora.LoraNotConvertible as exc:
            raise BackendLoadError(f"llama.cpp cannot apply the adapter in {adapter}: {exc}") from None
        runtime.apply_lora(lora)

    def _context_tokens(self, n: int) -> int:
        runtime: LlamaCppRuntime | None = self.model
        if runtime is None:
            raise BackendNotReady(f"model {self.name} is not loaded")
        context = min(runtime.n_ctx_train, runtime.cells // n)
        if self.max_seq_len is not None:
            context = min(context, self.max_seq_len)
        if self.kv_cache_len is not None:
            context = min(context, self.kv_cache_len // n)
        return context
