"""Constrained decoding: keep a generation inside a regular language, token by token.

A :class:`ConstrainedDecoder` holds one row's state. At each step it looks at the candidates in order
of the model's preference and keeps the first (greedy) or samples among the first few (temperature > 0)
whose text keeps the output a prefix of some string the pattern matches (the ``regex`` package's
partial matching does that test). End-of-sequence is allowed only once the output is a full match,
and forced when nothing can follow. So the output always matches the pattern, whatever the model —
the judge uses it to get a valid verdict even from a 135M model.

Tokens whose text alone is not valid UTF-8 (pieces of a multi-byte character) are skipped while
constrained; patterns here are about ASCII structure, and the rest of the text stays free.
"""

from __future__ import annotations

import re as _re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import regex

# How many of the model's best candidates are tried before scanning the whole vocabulary.
TOP_CANDIDATES = 64


@lru_cache(maxsize=64)
def compile_pattern(pattern: str) -> Any:
    try:
        return regex.compile(pattern)
    except regex.error as exc:
        raise ValueError(f"invalid output constraint pattern: {exc}") from exc


def choice_pattern(options: Sequence[str]) -> str:
    """A pattern that matches exactly one of ``options`` (an allowed-outputs list)."""
    if not options:
        raise ValueError("allowed outputs must not be empty")
    return "(?:" + "|".join(_re.escape(o) for o in options) + ")"


class TokenTable:
    """The text of every token of a tokenizer, computed once."""

    def __init__(self, tokenizer: Any) -> None:
        size = len(tokenizer)
        self.pieces: list[str | None] = []
        for token_id in range(size):
            text = tokenizer.decode([token_id], skip_special_tokens=False, clean_up_tokenization_spaces=False)
            special = token_id in set(getattr(tokenizer, "all_special_ids", []) or [])
            self.pieces.append(None if special or not text or "\ufffd" in text else text)
        # token ids by the first character of their text: the fallback search tests one character per group
        self.by_first_char: dict[str, list[int]] = {}
        for token_id, piece in enumerate(self.pieces):
            if piece is not None:
                self.by_first_char.setdefault(piece[0], []).append(token_id)

    def __len__(self) -> int:
        return len(self.pieces)


_TABLES: dict[int, TokenTable] = {}


def token_table(tokenizer: Any) -> TokenTable:
    """The (cached) table of ``tokenizer``."""
    table = _TABLES.get(id(tokenizer))
    if table is None:
        table = _TABLES[id(tokenizer)] = TokenTable(tokenizer)
    return table


class ConstrainedDecoder:
    """One row's constrained decoding state (not thread-safe; one per generated sequence)."""

    def __init__(self, pattern: str, table: TokenTable, eos_token_ids: Sequence[int]) -> None:
        self.pattern = compile_pattern(pattern)
        self.table = table
        self.eos = [t for t in eos_token_ids]
        self.text = ""

    def _prefix_ok(self, text: str) -> bool:
        return self.pattern.fullmatch(text, partial=True) is not None

    @property
    def complete(self) -> bool:
        return self.pattern.fullmatch(self.text) is not None

    def _allowed(self, token_id: int) -> bool:
        if token_id >= len(self.table.pieces):
            return False
        piece = self.table.pieces[token_id]
        return piece is not None and self._prefix_ok(self.text + piece)

    def choose(self, logits: Any, *, temperature: float = 0.0, generator: Any = None) -> int:
        """The next token given one row of logits (a 1-D torch tensor)."""
        import torch

        eos_ok = self.complete
        if eos_ok and not self.eos:
            raise RuntimeError("the constraint is complete but the model has no end-of-sequence token")
        k = min(TOP_CANDIDATES, logits.shape[-1])
        top = torch.topk(logits.float(), k)
        allowed: list[tuple[int, float]] = []
        for score, token in zip(top.values.tolist(), top.indices.tolist(), strict=True):
            if token in self.eos:
                if eos_ok:
                    allowed.append((self.eos[0], score))
            elif self._allowed(token):
                allowed.append((token, score))
            if allowed and temperature <= 0:
                break
        if not allowed:
            # Nothing among the favourites: search the tokens whose first character can follow.
            heads = [c for c in self.table.by_first_char if self._prefix_ok(self.text + c)]
            ids = [t for c in heads for t in self.table.by_first_char[c]]
            if ids:
                index = torch.tensor(ids, dtype=torch.long, device=logits.device)
                order = torch.argsort(logits.float().index_select(0, index), descending=True).tolist()
                for position in order:
                    if self._allowed(ids[position]):
                        return ids[position]
            if eos_ok:
                return self.eos[0]
            raise RuntimeError("no token can continue the constrained output")
        if temperature <= 0 or len(allowed) == 1:
            return allowed[0][0]
        # Drawn on the generator's device (the model's: a GPU one when serving on a GPU), so a seed holds there too.
        device = generator.device if generator is not None else "cpu"
        scores = torch.tensor([s for _, s in allowed], device=device) / temperature
        probs = torch.softmax(scores, dim=-1)
        pick = int(torch.multinomial(probs, 1, generator=generator)[0])
        return allowed[pick][0]

    def advance(self, token_id: int) -> None:
        if token_id in self.eos:
            return
        piece = self.table.pieces[token_id] if token_id < len(self.table.pieces) else None
        self.text += piece or ""
