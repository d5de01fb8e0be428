"""Constrained decoding: whatever the logits, the output matches the pattern."""

from __future__ import annotations

import string

import pytest
import regex
import torch

from adaptive_engine.server.domains.graders.judges import VERDICT_PATTERN, parse_verdict
from adaptive_engine.server.inference.constraints import ConstrainedDecoder, TokenTable, choice_pattern


class TinyTokenizer:
    """A small vocabulary: single characters, a few words, a broken byte and an end-of-sequence token."""

    def __init__(self) -> None:
        words = [
            '{"',
            '"reasoning"',
            ': "',
            '", "',
            '"score"',
            "PASS",
            "FAIL",
            "NA",
            '"}',
            " the",
            " answer",
            " is",
            " polite",
            ".",
            "\n",
            "\ufffd",
        ]
        self.vocab = ["<eos>"] + list(string.printable) + words
        self.all_special_ids = [0]

    def __len__(self) -> int:
        return len(self.vocab)

    def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=False):
        return "".join(self.vocab[i] for i in ids)


@pytest.fixture(scope="module")
def table() -> TokenTable:
    return TokenTable(TinyTokenizer())


def run(decoder: ConstrainedDecoder, seed: int, steps: int = 400, temperature: float = 0.0) -> str:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        logits = torch.randn(len(decoder.table), generator=gen) * 5
        token = decoder.choose(logits, temperature=temperature, generator=gen)
        if token == 0:
            return decoder.text
        decoder.advance(token)
    raise AssertionError("never ended")


@pytest.mark.parametrize("seed", range(12))
def test_random_logits_always_give_a_valid_verdict(table: TokenTable, seed: int) -> None:
    text = run(ConstrainedDecoder(VERDICT_PATTERN, table, [0]), seed, temperature=0.0 if seed % 2 else 1.0)
    assert regex.fullmatch(VERDICT_PATTERN, text)
    assert parse_verdict(text).verdict in {"PASS", "FAIL", "NA"}


def test_allowed_outputs(table: TokenTable) -> None:
    for seed in range(5):
        text = run(ConstrainedDecoder(choice_pattern(["PASS", "FAIL", "NA"]), table, [0]), seed)
        assert text in {"PASS", "FAIL", "NA"}


def test_the_model_preference_wins_among_allowed(table: TokenTable) -> None:
    decoder = ConstrainedDecoder(choice_pattern(["PASS", "FAIL"]), table, [0])
    logits = torch.zeros(len(table))
    logits[table.pieces.index("FAIL")] = 3.0
    logits[table.pieces.index("PASS")] = 2.0
    logits[table.pieces.index("NA")] = 10.0  # preferred but not allowed
    assert table.pieces[decoder.choose(logits)] == "FAIL"


def test_broken_pieces_and_bad_patterns(table: TokenTable) -> None:
    assert table.pieces[-1] is None and table.pieces[0] is None  # U+FFFD piece and the special token
    with pytest.raises(ValueError):
        ConstrainedDecoder("(unclosed", table, [0])
    with pytest.raises(ValueError):
        choice_pattern([])
