"""Continuous batching of text generation for a local transformers causal LM.

One worker thread owns the model. Requests arrive on a queue; between two decoding steps the worker
admits new requests (prefilled together, then merged into the running batch), drops cancelled ones
and retires finished ones. The running batch is left padded: one attention mask and one KV cache
of shape ``[rows, heads, length, head_dim]`` per layer, where a request with ``n`` choices owns ``n``
rows. Events (text deltas, usage, errors) are handed back to the asyncio loop of the request.

transformers ships an experimental continuous-batching manager too, but it fixes sampling settings
per manager (no per-request greedy/sampled mix, no per-request seed), which the API needs.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import secrets
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .backends.base import BackendError, BackendInvalidRequest, BackendNotReady, GenerationParams, TextDelta, Usage

log = logging.getLogger(__name__)

DONE = object()  # the last event of a job


@dataclass
class EngineStats:
    """Counters the engine keeps; tests and benchmarks read them."""

    decode_steps: int = 0
    prefills: int = 0
    generated_tokens: int = 0
    max_batch_rows: int = 0
    max_batch_requests: int = 0
    batched_steps: int = 0  # decode steps that served more than one request
    cancelled: int = 0
    completed: int = 0


@dataclass(eq=False)
class _Row:
    job: _Job
    index: int
    generated: list[int] = field(default_factory=list)
    emitted: int = 0  # characters of the decoded text already sent
    finished: bool = False
    decoder: Any = None  # a ConstrainedDecoder when the output must match a pattern
    step_logprobs: dict[str, Any] | None = None  # the last sampled token's entry, when log probabilities are asked
    pending_logprobs: list[dict[str, Any]] = field(default_factory=list)  # entries not sent with a delta yet


@dataclass(eq=False)
class _Job:
    prompt_ids: list[int]
    params: GenerationParams
    max_tokens: int
    emit: Callable[[Any], None]
    generator: torch.Generator | None = None
    rows: list[_Row] = field(default_factory=list)
    completion_tokens: int = 0
    cancelled: bool = False
    done: bool = False

    def cancel(self) -> None:
        self.cancelled = True


def _held_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters of ``text`` might still become a stop sequence (or a broken character)."""
    hold = 0
    for stop in stops:
        for k in range(min(len(stop) - 1, len(text)), hold, -1):
            if text.endswith(stop[:k]):
                hold = k
                break
    tail = len(text) - len(text.rstrip("\ufffd"))  # an incomplete multi-byte character decodes to U+FFFD
    return max(hold, tail)


class BatchEngine:
    """Runs ``model`` over concurrent requests in a worker thread (see the module docstring)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        eos_token_ids: Sequence[int],
        max_batch_rows: int = 16,
        max_cache_tokens: int | None = None,
        name: str = "local",
        vocab_size: int | None = None,
        device: Any = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        # Given by engines whose model is not a torch module (the llama.cpp backend's subclass).
        self.device = device if device is not None else next(model.parameters()).device
        self.vocab_size = vocab_size if vocab_size is not None else int(model.config.vocab_size)
        self.eos = set(eos_token_ids)
        self.max_batch_rows = max_batch_rows
        # The KV cache length (the model's compute config kv_cache_len): the batch is left padded, so its cache
        # holds rows x (longest prompt + max_tokens) positions; a job waits until it fits (None: no bound).
        self.max_cache_tokens = max_cache_tokens
        self.stats = EngineStats()
        self._inbox: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"batch-engine-{name}", daemon=True)
        # running batch
        self._rows: list[_Row] = []
        self._cache: Any = None
        self._mask: torch.Tensor | None = None  # [rows, length]
        self._next_pos: torch.Tensor | None = None  # [rows]
        self._last: torch.Tensor | None = None  # [rows] last sampled token, not yet in the cache
        self._waiting: list[_Job] = []  # admitted, prefilled at the next iteration
        self._backlog: deque[_Job] = deque()  # taken from the inbox but did not fit yet
        self._prefilled_last = False
        self._logprobs: Any = None  # a TokenLogprobs, made on the first request that asks for log probabilities

    # ------------------------------------------------------------------ public (any thread)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._inbox.put(None)
        self._thread.join()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def occupancy(self) -> tuple[int, int, int]:
        """(requests decoding, their rows, requests waiting to be admitted): read from any thread at /metrics
        scrapes, without a lock (a scrape may see a step in the middle: the values are each a moment's)."""
        rows = list(self._rows)
        running = len({id(row.job) for row in rows})
        waiting = len(self._waiting) + len(self._backlog) + self._inbox.qsize()
        return running, len(rows), waiting

    def submit(
        self,
        prompt_ids: list[int],
        params: GenerationParams,
        max_tokens: int,
        loop: asyncio.AbstractEventLoop,
        events: asyncio.Queue,
    ) -> _Job:
        def emit(event: Any) -> None:
            try:
                loop.call_soon_threadsafe(events.put_nowait, event)
            except RuntimeError:  # the request's event loop is gone: nobody listens any more
                job.cancelled = True

        generator = None
        if params.temperature > 0:
            generator = torch.Generator(device=self.device)
            generator.manual_seed(params.seed if params.seed is not None else secrets.randbits(63))
        job = _Job(prompt_ids=prompt_ids, params=params, max_tokens=max_tokens, emit=emit, generator=generator)
        job.rows = [_Row(job=job, index=i) for i in range(params.n)]
        if params.constraint is not None:
            from .constraints import compile_pattern

            try:
                compile_pattern(params.constraint)  # a bad pattern fails here, in the caller
            except ValueError as exc:
                raise BackendInvalidRequest(str(exc)) from exc
        if params.grammar is not None:
            from .grammar import GrammarDecoder, ll_tokenizer

            vocab = self.vocab_size
            try:  # here, in the caller: a grammar the tokenizer cannot follow is the request's error
                tokenizer = ll_tokenizer(self.tokenizer, vocab, sorted(self.eos))
                for row in job.rows:
                    row.decoder = GrammarDecoder(params.grammar, tokenizer, vocab)
            except ValueError as exc:
                raise BackendInvalidRequest(f"the output grammar cannot be enforced: {exc}") from exc
        if self._stop.is_set():
            raise BackendNotReady("the model is being unloaded")
        self._inbox.put(job)
        return job

    # ------------------------------------------------------------------ worker thread

    def _run(self) -> None:
        with torch.inference_mode():
            while not self._stop.is_set():
                try:
                    self._iteration()
                except Exception as exc:  # a failing step fails the jobs in it, the engine goes on
                    log.exception("batch engine step failed")
                    error = exc if isinstance(exc, BackendError) else BackendError(f"generation failed: {exc}")
                    for job in {row.job for row in self._rows} | set(self._waiting) | set(self._backlog):
                        self._finish_job(job, error)
                    self._reset_batch()
                    self._waiting = []
                    self._backlog.clear()
        error = BackendNotReady("the model was unloaded")
        for job in {row.job for row in self._rows} | set(self._waiting) | set(self._backlog):
            self._finish_job(job, error)
        while True:
            try:
                queued = self._inbox.get_nowait()
            except queue.Empty:
                break
            if queued is not None:
                self._finish_job(queued, error)

    def _iteration(self) -> None:
        self._admit()
        self._drop_cancelled()
        # Prefill joiners, but never twice in a row while others decode: arrivals cannot starve the batch.
        if self._waiting and not (self._rows and self._prefilled_last):
            # The joiners stay listed as waiting until their prefill is done: when it raises, _run's handler
            # fails them with the rest (taken off the list first, their callers would wait forever).
            self._prefill(self._waiting)
            self._waiting = []
            self._prefilled_last = True
        elif self._rows:
            self._decode_step()
            self._prefilled_last = False
        self._retire_finished()

    def _admit(self) -> None:
        free = self.max_batch_rows - len(self._rows) - sum(len(j.rows) for j in self._waiting)
        block = not self._rows and not self._waiting and not self._backlog
        while True:
            job: _Job | None
            if self._backlog:
                job = self._backlog.popleft()
            else:
                try:
                    job = self._inbox.get(timeout=0.5) if block else self._inbox.get_nowait()
                except queue.Empty:
                    return
                if job is None:  # stop sentinel
                    return
            block = False
            if job.cancelled:
                self._drop(job)
                continue
            if (len(job.rows) > free or not self._cache_fits(job)) and (self._rows or self._waiting):
                self._backlog.appendleft(job)  # no room now: first in line when rows free up
                return
            self._waiting.append(job)
            free -= len(job.rows)

    def _cache_fits(self, job: _Job) -> bool:
        if self.max_cache_tokens is None:
            return True
        jobs = [*{id(r.job): r.job for r in self._rows}.values(), *self._waiting, job]
        rows = sum(len(j.rows) for j in jobs)
        return rows * max(len(j.prompt_ids) + j.max_tokens for j in jobs) <= self.max_cache_tokens

    def _drop(self, job: _Job) -> None:
        self.stats.cancelled += 1
        job.done = True

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._waiting if j.cancelled]:
            self._waiting.remove(job)
            self._drop(job)
        gone = {row.job for row in self._rows if row.job.cancelled}
        if gone:
            for job in gone:
                self._drop(job)
            self._keep([i for i, row in enumerate(self._rows) if not row.job.cancelled])

    # -- model steps

    def _prefill(self, jobs: list[_Job]) -> None:
        rows = [row for job in jobs for row in job.rows]
        for row in rows:
            if row.job.params.constraint is not None and row.decoder is None:
                from .constraints import ConstrainedDecoder, token_table

                # The token table is built once per tokenizer, here in the worker, off the event loop.
                row.decoder = ConstrainedDecoder(
                    row.job.params.constraint, token_table(self.tokenizer), sorted(self.eos)
                )
        # One prompt row per request: its n choices share the prompt, so the prefill runs once and its
        # cache is copied to the n rows (with n=8 the prefill used to cost 8 times as much).
        length = max(len(job.prompt_ids) for job in jobs)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(jobs), length), pad, dtype=torch.long)
        mask = torch.zeros((len(jobs), length), dtype=torch.long)
        for j, job in enumerate(jobs):
            prompt = job.prompt_ids
            ids[j, length - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
            mask[j, length - len(prompt) :] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        from transformers import DynamicCache

        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=ids, attention_mask=mask, position_ids=positions, cache=cache, use_cache=True, logits_to_keep=1
        )
        self.stats.prefills += 1
        logits = out.logits[:, -1, :]
        cache = out.cache
        if len(rows) > len(jobs):
            index = torch.repeat_interleave(
                torch.arange(len(jobs), device=self.device),
                torch.tensor([len(job.rows) for job in jobs], device=self.device),
            )
            for layer in cache.layers:
                layer.keys = layer.keys.index_select(0, index)
                layer.values = layer.values.index_select(0, index)
            mask, logits = mask.index_select(0, index), logits.index_select(0, index)
        tokens = self._sample(logits, rows)
        self._merge(rows, cache, mask, mask.sum(-1), tokens)
        self._record_batch()
        self._consume(rows, tokens)

    def _decode_step(self) -> None:
        assert self._mask is not None and self._next_pos is not None and self._last is not None
        ones = torch.ones((len(self._rows), 1), dtype=self._mask.dtype, device=self.device)
        self._mask = torch.cat([self._mask, ones], dim=-1)
        out = self.model(
            input_ids=self._last[:, None],
            attention_mask=self._mask,
            position_ids=self._next_pos[:, None],
            cache=self._cache,
            use_cache=True,
            logits_to_keep=1,
        )
        self._cache = out.cache
        self._next_pos = self._next_pos + 1
        self.stats.decode_steps += 1
        if len({id(row.job) for row in self._rows}) > 1:
            self.stats.batched_steps += 1
        tokens = self._sample(out.logits[:, -1, :], self._rows)
        self._last = tokens
        self._consume(self._rows, tokens)

    def _sample(self, logits: torch.Tensor, rows: list[_Row]) -> torch.Tensor:
        logits = logits.float()
        # The model's own distribution, taken before a decoder masks anything (only for rows that ask).
        asking = [r for r, row in enumerate(rows) if row.job.params.logprobs is not None]
        logp = torch.log_softmax(logits[asking], dim=-1) if asking else None
        tokens = self._choose(logits, rows)
        if logp is not None:
            table = self._token_logprobs()
            for i, r in enumerate(asking):
                top = rows[r].job.params.logprobs or 0
                rows[r].step_logprobs = table.entry(logp[i], int(tokens[r]), top)
        return tokens

    def _token_logprobs(self) -> Any:
        if self._logprobs is None:
            from .grammar import ll_tokenizer
            from .logprobs import TokenLogprobs

            self._logprobs = TokenLogprobs(ll_tokenizer(self.tokenizer, self.vocab_size, sorted(self.eos)))
        return self._logprobs

    def _choose(self, logits: torch.Tensor, rows: list[_Row]) -> torch.Tensor:
        tokens = logits.argmax(dim=-1)
        sampled: dict[int, tuple[_Job, list[int]]] = {}  # a request's sampled rows, drawn together
        for r, row in enumerate(rows):
            params = row.job.params
            if row.decoder is not None:
                try:
                    token = row.decoder.choose(logits[r], temperature=params.temperature, generator=row.job.generator)
                except RuntimeError:  # nothing can continue the pattern: end this row, never the batch
                    token = min(self.eos) if self.eos else int(logits[r].argmax())
                row.decoder.advance(token)
                tokens[r] = token
            elif params.temperature > 0:
                sampled.setdefault(id(row.job), (row.job, []))[1].append(r)
        for job, indices in sampled.values():
            index = torch.tensor(indices, device=logits.device)
            probs = torch.softmax(logits.index_select(0, index) / job.params.temperature, dim=-1)
            if job.params.top_p < 1.0:
                sorted_probs, order = probs.sort(dim=-1, descending=True)
                cumulative = sorted_probs.cumsum(-1)
                cut = cumulative - sorted_probs >= job.params.top_p  # keep the smallest head reaching top_p
                sorted_probs[cut] = 0.0
                probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
            tokens[index] = _draw(probs, job.generator)
        return tokens

    # -- batch bookkeeping

    def _merge(
        self, rows: list[_Row], cache: Any, mask: torch.Tensor, next_pos: torch.Tensor, last: torch.Tensor
    ) -> None:
        if not self._rows:
            self._rows, self._cache, self._mask, self._next_pos, self._last = list(rows), cache, mask, next_pos, last
            return
        assert self._mask is not None and self._next_pos is not None and self._last is not None
        old_len, new_len = self._mask.shape[1], mask.shape[1]
        total = max(old_len, new_len)
        for old_layer, new_layer in zip(self._cache.layers, cache.layers, strict=True):
            old_layer.keys = torch.cat([_left_pad(old_layer.keys, total), _left_pad(new_layer.keys, total)])
            old_layer.values = torch.cat([_left_pad(old_layer.values, total), _left_pad(new_layer.values, total)])
        self._mask = torch.cat([_left_pad(self._mask, total), _left_pad(mask, total)])
        self._next_pos = torch.cat([self._next_pos, next_pos])
        self._last = torch.cat([self._last, last])
        self._rows.extend(rows)

    def _keep(self, keep: list[int]) -> None:
        if len(keep) == len(self._rows):
            return
        if not keep:
            self._reset_batch()
            return
        assert self._mask is not None and self._next_pos is not None and self._last is not None
        index = torch.tensor(keep, dtype=torch.long, device=self.device)
        mask = self._mask.index_select(0, index)
        start = int(mask.any(dim=0).nonzero()[0])  # columns that are padding for every remaining row
        for layer in self._cache.layers:
            layer.keys = layer.keys.index_select(0, index)[:, :, start:]
            layer.values = layer.values.index_select(0, index)[:, :, start:]
        self._mask = mask[:, start:]
        self._next_pos = self._next_pos.index_select(0, index)
        self._last = self._last.index_select(0, index)
        self._rows = [self._rows[i] for i in keep]

    def _reset_batch(self) -> None:
        self._rows, self._cache, self._mask, self._next_pos, self._last = [], None, None, None, None

    def _retire_finished(self) -> None:
        if any(row.finished for row in self._rows):
            self._keep([i for i, row in enumerate(self._rows) if not row.finished])

    def _record_batch(self) -> None:
        self.stats.max_batch_rows = max(self.stats.max_batch_rows, len(self._rows))
        self.stats.max_batch_requests = max(self.stats.max_batch_requests, len({id(r.job) for r in self._rows}))

    # -- tokens to text

    def _consume(self, rows: list[_Row], tokens: torch.Tensor) -> None:
        for row, token in zip(rows, tokens.tolist(), strict=True):
            self._advance(row, token)

    def _advance(self, row: _Row, token: int) -> None:
        if row.finished:
            return
        job = row.job
        job.completion_tokens += 1
        self.stats.generated_tokens += 1
        stops = job.params.stop
        if token in self.eos:
            self._finish_row(row, self._text(row), "stop")
            return
        row.generated.append(token)
        if row.step_logprobs is not None:
            row.pending_logprobs.append(row.step_logprobs)
            row.step_logprobs = None
        text = self._text(row)
        if stops:
            # emitted text never holds a stop sequence nor the start of one, so search the rest only
            hits = [at for at in (text.find(stop, row.emitted) for stop in stops) if at != -1]
            if hits:
                self._finish_row(row, text[: min(hits)], "stop")
                return
        if len(row.generated) >= job.max_tokens:
            self._finish_row(row, text, "length")
            return
        safe = len(text) - _held_back(text, stops)
        if safe > row.emitted:
            job.emit(TextDelta(index=row.index, text=text[row.emitted : safe], logprobs=self._logprobs_out(row)))
            row.emitted = safe

    @staticmethod
    def _logprobs_out(row: _Row) -> dict[str, Any] | None:
        """The entries of the tokens behind a delta about to be sent (OpenAI's ``logprobs`` of a chunk)."""
        if row.job.params.logprobs is None:
            return None
        content, row.pending_logprobs = row.pending_logprobs, []
        return {"content": content}

    def _text(self, row: _Row) -> str:
        return self.tokenizer.decode(row.generated, skip_special_tokens=True)

    def _finish_row(self, row: _Row, text: str, reason: str) -> None:
        row.finished = True
        job = row.job
        job.emit(
            TextDelta(
                index=row.index,
                text=text[row.emitted :] if len(text) > row.emitted else "",
                finish_reason=reason,
                logprobs=self._logprobs_out(row),
            )
        )
        row.emitted = max(row.emitted, len(text))
        if all(r.finished for r in job.rows):
            self.stats.completed += 1
            self._finish_job(job, None)

    def _finish_job(self, job: _Job, error: BaseException | None) -> None:
        if job.done:
            return
        job.done = True
        if error is not None:
            job.emit(error)
        else:
            job.emit(Usage(prompt_tokens=len(job.prompt_ids), completion_tokens=job.completion_tokens))
        job.emit(DONE)


def _draw(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """One token per row of ``probs`` by inverse CDF: exact, and on a CPU some 30 times faster than
    ``torch.multinomial`` over a 49k vocabulary (which cost 15% of a 64-row decode step)."""
    cdf = probs.cumsum(-1)
    u = torch.rand((probs.shape[0], 1), generator=generator, dtype=cdf.dtype, device=cdf.device) * cdf[:, -1:]
    return torch.searchsorted(cdf, u, right=True).clamp_(max=probs.shape[-1] - 1)[:, 0]


def _left_pad(t: torch.Tensor, length: int) -> torch.Tensor:
    """Left pad the sequence axis (dim 2 of a KV tensor, dim 1 of a mask) with zeros up to ``length``."""
    axis = 2 if t.dim() == 4 else 1
    missing = length - t.shape[axis]
    if missing <= 0:
        return t
    shape = list(t.shape)
    shape[axis] = missing
    return torch.cat([t.new_zeros(shape), t], dim=axis)
