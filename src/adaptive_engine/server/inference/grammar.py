"""Structured output on local models: a JSON schema compiled by llguidance (a maintained Rust library) into
a grammar, enforced token by token with the mask it computes for each step.

:class:`GrammarDecoder` has the interface of the regex :class:`~.constraints.ConstrainedDecoder` the judges
use (``choose`` a token from one row's logits, ``advance`` past it), so the batching engine runs either. JSON
is compiled without free whitespace: a small model cannot pad its answer with blanks until ``max_tokens``.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import llguidance
import numpy

if TYPE_CHECKING:
    from llguidance._lib import JsonCompileOptions  # declared in the binary module's stub only

# Compact JSON: no whitespace between tokens, so every step moves the answer on.
JSON_OPTIONS: JsonCompileOptions = {"whitespace_flexible": False}
_LOCK = threading.Lock()
_TOKENIZERS: dict[tuple[int, int], Any] = {}


@functools.lru_cache(maxsize=256)
def _compile(schema_json: str) -> str:
    grammar = llguidance.LLMatcher.grammar_from_json_schema(schema_json, defaults=JSON_OPTIONS)
    problem = llguidance.LLMatcher.validate_grammar(grammar)
    if problem:
        raise ValueError(problem)
    return grammar


def json_grammar(schema: dict[str, Any]) -> str:
    """The grammar of JSON values that ``schema`` accepts (ValueError with llguidance's reason when it cannot
    compile it). Cached by the schema's JSON: applications send the same schema on every call."""
    return _compile(json.dumps(schema, sort_keys=True))


def ll_tokenizer(tokenizer: Any, vocab_size: int, eos_token_ids: Sequence[int]) -> Any:
    """llguidance's view of a transformers tokenizer (built once per tokenizer and vocabulary size)."""
    from llguidance.hf import from_tokenizer

    key = (id(tokenizer), vocab_size)
    with _LOCK:
        found = _TOKENIZERS.get(key)
        if found is None:
            found = _TOKENIZERS[key] = from_tokenizer(tokenizer, n_vocab=vocab_size, eos_token=list(eos_token_ids))
        return found


class GrammarDecoder:
    """One row's state under a grammar (not thread-safe; one per generated sequence)."""

    def __init__(self, grammar: str, tokenizer: Any, vocab_size: int) -> None:
        import torch

        self.matcher = llguidance.LLMatcher(tokenizer, grammar, log_level=0)
        if self.matcher.is_error():
            raise ValueError(self.matcher.get_error())
        # One bit per token. Filled and unpacked here rather than with llguidance.torch, whose helpers are
        # torch.compile'd: importing them and their first call took seconds on a CPU, inside a request.
        self.bitmask = numpy.zeros((vocab_size + 31) // 32, dtype=numpy.int32)
        self._torch = torch

    def choose(self, logits: Any, *, temperature: float = 0.0, generator: Any = None) -> int:
        """The next token given one row of logits (a 1-D torch tensor)."""
        torch = self._torch
        if self.matcher.is_error():
            raise RuntimeError(self.matcher.get_error())
        self.matcher.unsafe_compute_mask_ptr(self.bitmask.ctypes.data, self.bitmask.nbytes)
        bits = numpy.unpackbits(self.bitmask.view(numpy.uint8), bitorder="little")[: logits.shape[-1]]
        allowed = torch.from_numpy(bits.astype(bool)).to(logits.device)
        scores = logits.float().masked_fill(~allowed, float("-inf"))
        if not torch.isfinite(scores).any():
            raise RuntimeError("no token can continue the structured output")
        if temperature <= 0:
            return int(scores.argmax())
        probs = torch.softmax(scores / temperature, dim=-1)
        return int(torch.multinomial(probs, 1, generator=generator)[0])

    def advance(self, token_id: int) -> None:
        self.matcher.consume_token(token_id)
