"""Log probabilities of generated tokens on local models, in OpenAI's chat shape.

Each generated token becomes ``{"token", "logprob", "bytes", "top_logprobs": [...]}``. The log probabilities are
the model's own (a log-softmax of the raw logits, before temperature, top-p or a grammar's mask), as vLLM
reports them by default. A token's bytes come from llguidance's view of the tokenizer, which knows them
exactly even where a token holds only part of a UTF-8 character.
"""

from __future__ import annotations

from typing import Any

import torch


class TokenLogprobs:
    """Builds the entries of one model's tokens (token texts are cached: the same ids come back all the time)."""

    def __init__(self, ll_tokenizer: Any) -> None:
        self._tokenizer = ll_tokenizer
        self._pieces: dict[int, tuple[str, list[int]]] = {}

    def _piece(self, token: int) -> tuple[str, list[int]]:
        piece = self._pieces.get(token)
        if piece is None:
            raw = bytes(self._tokenizer.decode_bytes([token]))
            piece = self._pieces[token] = (raw.decode("utf-8", errors="replace"), list(raw))
        return piece

    def entry(self, logp: torch.Tensor, token: int, top: int) -> dict[str, Any]:
        """The entry of ``token`` chosen from the distribution ``logp`` (one row of log-probabilities), with
        the ``top`` most likely tokens as alternatives."""
        text, raw = self._piece(token)
        alternatives = []
        if top > 0:
            values, ids = torch.topk(logp, top)
            for value, other in zip(values.tolist(), ids.tolist(), strict=True):
                other_text, other_raw = self._piece(other)
                alternatives.append({"token": other_text, "logprob": value, "bytes": other_raw})
        return {"token": text, "logprob": float(logp[token]), "bytes": raw, "top_logprobs": alternatives}
