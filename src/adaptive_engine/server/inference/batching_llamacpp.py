"""The batching engine with its model steps run by llama.cpp (backends/llamacpp.py explains the design).

Admission, sampling, stop sequences, constraints and events are :class:`~.batching.BatchEngine`'s; this class
replaces the torch KV cache with llama.cpp sequences: each row (a request's choice) owns one, a decode step
feeds every row's last token in one ``llama_decode`` batch, and a finished row's sequence is freed.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy
import torch

from .backends.base import BackendError
from .batching import BatchEngine

log = logging.getLogger(__name__)


class LlamaCppEngine(BatchEngine):
    def __init__(self, runtime: Any, tokenizer: Any, **kwargs: Any) -> None:
        super().__init__(runtime, tokenizer, vocab_size=runtime.n_vocab, device=torch.device("cpu"), **kwargs)
        self.runtime = runtime  # a backends.llamacpp.LlamaCppRuntime, used by the worker thread only
        self._free = list(range(runtime.sequences - 1, -1, -1))
        # Parallel to self._rows: each row's sequence, the position of its next token, and its last sampled
        # token (not in the cache yet).
        self._seqs: list[int] = []
        self._positions: list[int] = []
        self._tokens: list[int] = []

    def stop(self) -> None:
        super().stop()
        self.runtime.close()

    def _cache_fits(self, job: Any) -> bool:
        jobs = [*{id(r.job): r.job for r in self._rows}.values(), *self._waiting, job]
        budget = self.runtime.cells
        if self.max_cache_tokens is not None:
            budget = min(budget, self.max_cache_tokens)
        # A prompt's cells are shared by its choices; each choice adds its own answer.
        return sum(len(j.prompt_ids) + len(j.rows) * j.max_tokens for j in jobs) <= budget

    # -- model steps

    def _prefill(self, jobs: list[Any]) -> None:
        rows = [row for job in jobs for row in job.rows]
        seqs: list[int] = []
        try:
            logits = self._prefill_logits(jobs, rows, seqs)
        except Exception as exc:  # these requests fail; the running batch goes on
            log.exception("llama.cpp prefill failed")
            error = exc if isinstance(exc, BackendError) else BackendError(f"generation failed: {exc}")
            for seq in seqs:
                self.runtime.drop_sequence(seq)
                self._free.append(seq)
            for job in jobs:
                self._finish_job(job, error)
            return
        self.stats.prefills += 1
        tokens = self._sample(logits, rows)
        self._rows.extend(rows)
        self._seqs.extend(seqs)
        self._positions.extend(len(row.job.prompt_ids) for row in rows)
        self._tokens.extend(tokens.tolist())
        self._record_batch()
        self._consume(rows, tokens)

    def _prefill_logits(self, jobs: list[Any], rows: list[Any], seqs: list[int]) -> torch.Tensor:
        for row in rows:
            if row.job.params.constraint is not None and row.decoder is None:
                from .constraints import ConstrainedDecoder, token_table

                row.decoder = ConstrainedDecoder(
                    row.job.params.constraint, token_table(self.tokenizer), sorted(self.eos)
                )
            seqs.append(self._free.pop())
        # One prefill per request, in the sequence of its first choice.
        entries: list[tuple[int, int, int, bool]] = []
        firsts: list[int] = []
        at = 0
        for job in jobs:
            first, last = seqs[at], len(job.prompt_ids) - 1
            firsts.append(first)
            entries.extend((token, pos, first, pos == last) for pos, token in enumerate(job.prompt_ids))
            at += len(job.rows)
        per_job = self.runtime.decode(entries)
        out, at = [], 0
        for job, first, job_logits in zip(jobs, firsts, per_job, strict=True):
            for seq in seqs[at + 1 : at + len(job.rows)]:  # the other choices share the prompt's cells
                self.runtime.copy_sequence(first, seq)
            out.extend([job_logits] * len(job.rows))
            at += len(job.rows)
        return torch.from_numpy(numpy.stack(out))

    def _decode_step(self) -> None:
        entries = [(t, pos, seq, True) for t, pos, seq in zip(self._tokens, self._positions, self._seqs, strict=True)]
        logits = torch.from_numpy(numpy.stack(self.runtime.decode(entries)))
        self._positions = [pos + 1 for pos in self._positions]
        self.stats.decode_steps += 1
        if len({id(row.job) for row in self._rows}) > 1:
            self.stats.batched_steps += 1
        tokens = self._sample(logits, self._rows)
        self._tokens = tokens.tolist()
        self._consume(self._rows, tokens)

    # -- batch bookkeeping

    def _keep(self, keep: list[int]) -> None:
        if len(keep) == len(self._rows):
            return
        kept = set(keep)
        for i, seq in enumerate(self._seqs):
            if i not in kept:
                self.runtime.drop_sequence(seq)
                self._free.append(seq)
        self._rows = [self._rows[i] for i in keep]
        self._seqs = [self._seqs[i] for i in keep]
        self._positions = [self._positions[i] for i in keep]
        self._tokens = [self._tokens[i] for i in keep]

    def _reset_batch(self) -> None:
        self.runtime.clear()
        self._rows, self._seqs, self._positions, self._tokens = [], [], [], []
        self._free = list(range(self.runtime.sequences - 1, -1, -1))
