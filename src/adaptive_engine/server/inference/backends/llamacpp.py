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
import ctypes
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from adaptive_engine import models_bundled

from . import gguf_lora
from .base import BackendError, BackendLoadError, BackendNotReady
from .local import _LOADING, LocalChatBackend, LocalModelSpec, _import_batching

log = logging.getLogger(__name__)

LLAMACPP_HINT = "the llama.cpp engine needs llama-cpp-python: pip install 'adaptive-engine[llamacpp]'"
# KV cells of a context when the model's compute config sets no kv_cache_len: about 190 MB for the bundled
# 135M model (23 KB a token), one full 8k context or e.g. 32 sequences of 256 tokens.
DEFAULT_KV_CELLS = 8192
# Tokens one llama_decode call takes (a longer prefill is cut in pieces of this size).
BATCH_TOKENS = 512
_INIT = threading.Lock()
_initialized = False


def _llama() -> Any:
    """The llama_cpp bindings, initialised once per process, with llama.cpp's own logging quietened."""
    global _initialized
    try:
        import llama_cpp
    except ModuleNotFoundError as exc:
        raise BackendLoadError(f"{LLAMACPP_HINT} ({exc.name} is not installed)") from None
    with _INIT:
        if not _initialized:
            logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)
            llama_cpp.llama_backend_init()
            _initialized = True
    return llama_cpp


def available() -> bool:
    try:
        _llama()
    except BackendLoadError:
        return False
    return True


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
    if not available():
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


class LlamaCppRuntime:
    """One llama.cpp model and context (with its LoRA adapter, if any), and the batch fed to it. Not thread-safe:
    the engine's worker thread is its only user after loading."""

    def __init__(self, weights: Path, *, cells: int, sequences: int, threads: int) -> None:
        llama = self.llama = _llama()
        self.model = self.ctx = self.adapter = self.batch = None
        if not weights.is_file():
            raise BackendLoadError(f"GGUF file not found: {weights}")
        params = llama.llama_model_default_params()
        params.n_gpu_layers = 0
        self.model = llama.llama_model_load_from_file(str(weights).encode(), params)
        if not self.model:
            raise BackendLoadError(f"llama.cpp could not load {weights}")
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
                raise BackendLoadError(f"llama.cpp could not make a context of {cells} tokens for {weights}")
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
        """Load the GGUF LoRA ``lora`` and apply it (scale 1) to every sequence of the context."""
        llama = self.llama
        self.adapter = llama.llama_adapter_lora_init(self.model, str(lora).encode())
        if not self.adapter:
            raise BackendLoadError(f"llama.cpp could not load the LoRA adapter {lora} on its base")
        adapters = (llama.llama_adapter_lora_p_ctypes * 1)(self.adapter)
        scales = (ctypes.c_float * 1)(1.0)
        if llama.llama_set_adapters_lora(self.ctx, adapters, 1, scales) != 0:
            raise BackendLoadError(f"llama.cpp could not apply the LoRA adapter {lora}")

    def decode(self, entries: list[tuple[int, int, int, bool]]) -> list[Any]:
        """Feed ``(token, position, sequence, wants_logits)`` entries; the logits rows (numpy copies) of those
        that want them, in order."""
        import numpy

        llama, batch, out = self.llama, self.batch, []
        if batch is None:
            raise BackendLoadError("the llama.cpp context is closed")
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
                raise BackendError("llama.cpp found no room in its KV cache for this batch")
            if status != 0:
                raise BackendError(f"llama.cpp failed to decode (status {status})")
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
