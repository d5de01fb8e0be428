"""One llama.cpp model and context (``llama-cpp-python``'s low-level bindings), shared by the server's llama.cpp
engine (``server/inference/backends/llamacpp.py``) and by training recipes that sample through it (grpo).

Recipes must not import ``server/``, so the context lives here and raises its own errors; the server's backend
turns them into its backend errors. Nothing here imports llama_cpp at import time.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from pathlib import Path
from typing import Any

from adaptive_engine import gguf_lora

LLAMACPP_HINT = "the llama.cpp engine needs llama-cpp-python: pip install 'adaptive-engine[llamacpp]'"
# Tokens one llama_decode call takes (a longer prefill is cut in pieces of this size).
BATCH_TOKENS = 512
_INIT = threading.Lock()
_initialized = False


class LlamaCppLoadError(RuntimeError):
    """llama.cpp (or the package) cannot load a model, a context or an adapter; the message says which."""


class LlamaCppDecodeError(RuntimeError):
    """A ``llama_decode`` call failed (no room in the KV cache, or llama.cpp's own error)."""


def load_llama() -> Any:
    """The llama_cpp bindings, initialised once per process, with llama.cpp's own logging quietened."""
    global _initialized
    try:
        import llama_cpp
    except ModuleNotFoundError as exc:
        raise LlamaCppLoadError(f"{LLAMACPP_HINT} ({exc.name} is not installed)") from None
    with _INIT:
        if not _initialized:
            logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
            llama_cpp.llama_backend_init()
            _initialized = True
    return llama_cpp


def available() -> bool:
    try:
        load_llama()
    except LlamaCppLoadError:
        return False
    return True


class LlamaCppRuntime:
    """One llama.cpp model and context (with its LoRA adapter, if any), and the batch fed to it. Not thread-safe:
    the engine's worker thread is its only user after loading."""

    def __init__(self, weights: Path, *, cells: int, sequences: int, threads: int) -> None:
        llama = self.llama = load_llama()
        self.model = self.ctx = self.adapter = self.batch = None
        if not weights.is_file():
            raise LlamaCppLoadError(f"GGUF file not found: {weights}")
        params = llama.llama_model_default_params()
        params.n_gpu_layers = 0
        self.model = llama.llama_model_load_from_file(str(weights).encode(), params)
        if not self.model:
            raise LlamaCppLoadError(f"llama.cpp could not load {weights}")
        try:
            self.vocab = llama.llama_model_get_vocab(self.model)
            self.n_vocab = int(llama.llama_vocab_n_tokens(self.vocab))
            self.n_ctx_train = int(llama.llama_model_n_ctx_train(self.model))
            self.sequences = max(1, min(sequences, int(llama.llama_max_parallel_sequences())))
            context = llama.llama_context_default_params()
            context.n_ctx = cells
            context.n_batch = BATCH_TOKENS
            context.n_ubatch = BATCH_TOKENS
            context.n_seq_max = self.sequences
            context.n_threads = context.n_threads_batch = threads
            context.kv_unified = True  # the choices of a request share their prompt's cells
            context.no_perf = True
            self.ctx = llama.llama_init_from_model(self.model, context)
            if not self.ctx:
                raise LlamaCppLoadError(f"llama.cpp could not make a context of {cells} tokens for {weights}")
            self.cells = int(llama.llama_n_ctx(self.ctx))
            self.memory = llama.llama_get_memory(self.ctx)
            self.batch = llama.llama_batch_init(BATCH_TOKENS, 0, 1)
            self.eog = [t for t in range(self.n_vocab) if llama.llama_vocab_is_eog(self.vocab, t)]
        except BaseException:
            self.close()
            raise

    def metadata(self, key: str) -> str | None:
        """A value of the GGUF file's metadata, as text."""
        buffer = ctypes.create_string_buffer(256)
        if self.llama.llama_model_meta_val_str(self.model, key.encode(), buffer, len(buffer)) < 0:
            return None
        return buffer.value.decode()

    def layout(self) -> gguf_lora.BaseLayout:
        architecture = self.metadata("general.architecture") or ""
        heads = int(self.metadata(f"{architecture}.attention.head_count") or 0)
        kv_heads = int(self.metadata(f"{architecture}.attention.head_count_kv") or heads)
        return gguf_lora.BaseLayout(architecture, heads, kv_heads)

    def apply_lora(self, lora: Path) -> None:
        """Load the GGUF LoRA ``lora`` and apply it (scale 1) to every sequence of the context, in place of the
        adapter applied before (freed). The KV cache holds no sequence computed with the old one after
        :meth:`clear`: callers swap adapters between batches only."""
        llama = self.llama
        adapter = llama.llama_adapter_lora_init(self.model, str(lora).encode())
        if not adapter:
            raise LlamaCppLoadError(f"llama.cpp could not load the LoRA adapter {lora} on its base")
        adapters = (llama.llama_adapter_lora_p_ctypes * 1)(adapter)
        scales = (ctypes.c_float * 1)(1.0)
        if llama.llama_set_adapters_lora(self.ctx, adapters, 1, scales) != 0:
            llama.llama_adapter_lora_free(adapter)
            raise LlamaCppLoadError(f"llama.cpp could not apply the LoRA adapter {lora}")
        previous, self.adapter = self.adapter, adapter
        if previous:
            llama.llama_adapter_lora_free(previous)

    def decode(self, entries: list[tuple[int, int, int, bool]]) -> list[Any]:
        """Feed ``(token, position, sequence, wants_logits)`` entries; the logits rows (numpy copies) of those
        that want them, in order."""
        import numpy

        llama, batch, out = self.llama, self.batch, []
        if batch is None:
            raise LlamaCppLoadError("the llama.cpp context is closed")
        for start in range(0, len(entries), BATCH_TOKENS):
            chunk = entries[start : start + BATCH_TOKENS]
            for i, (token, pos, seq, wants) in enumerate(chunk):
                batch.token[i] = token
                batch.pos[i] = pos
                batch.n_seq_id[i] = 1
                batch.seq_id[i][0] = seq
                batch.logits[i] = wants
            batch.n_tokens = len(chunk)
            status = llama.llama_decode(self.ctx, batch)
            if status == 1:
                raise LlamaCppDecodeError("llama.cpp found no room in its KV cache for this batch")
            if status != 0:
                raise LlamaCppDecodeError(f"llama.cpp failed to decode (status {status})")
            for i, entry in enumerate(chunk):
                if entry[3]:
                    row = llama.llama_get_logits_ith(self.ctx, i)
                    out.append(numpy.ctypeslib.as_array(row, shape=(self.n_vocab,)).copy())
        return out

    def copy_sequence(self, source: int, target: int) -> None:
        self.llama.llama_memory_seq_cp(self.memory, source, target, -1, -1)

    def drop_sequence(self, seq: int) -> None:
        self.llama.llama_memory_seq_rm(self.memory, seq, -1, -1)

    def clear(self) -> None:
        self.llama.llama_memory_clear(self.memory, True)

    def close(self) -> None:
        llama = self.llama
        if self.batch is not None:
            llama.llama_batch_free(self.batch)
            self.batch = None
        if self.ctx:
            llama.llama_free(self.ctx)
            self.ctx = None
        if self.adapter:
            llama.llama_adapter_lora_free(self.adapter)
            self.adapter = None
        if self.model:
            llama.llama_model_free(self.model)
            self.model = None
