"""Model prices (dollars per million tokens) and the cost of a call.

A model's prices are set when it is added or updated (GraphQL ``addExternalModel`` / ``updateModelPrices``,
the SDK's ``models.add_external`` / ``models.update_prices``); local models cost nothing unless priced. An
operator can keep a price table in a JSON file (setting ``price_table``): a model added without prices
takes the row of its key, else of its provider's model id.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptive_engine.server.errors import InvalidInput

PER = 1_000_000


@dataclass(frozen=True)
class Prices:
    input: float = 0.0
    output: float = 0.0
    cached_input: float = 0.0

    @property
    def free(self) -> bool:
        return not (self.input or self.output or self.cached_input)

    def cost(self, prompt_tokens: int, completion_tokens: int, cached_tokens: int = 0) -> float:
        cached = min(max(cached_tokens, 0), prompt_tokens)
        return (
            (prompt_tokens - cached) * self.input + cached * self.cached_input + completion_tokens * self.output
        ) / PER


FIELDS = {"input": "input", "output": "output", "cached_input": "cached_input"}


def check(values: dict[str, Any], where: str) -> Prices:
    """Prices from ``{"input", "output", "cached_input"}`` (any may be missing: 0), refused by name if bad."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise InvalidInput(f"{where}: unknown price field(s) {sorted(unknown)}; use input, output, cached_input")
    out = {}
    for name in FIELDS:
        value = values.get(name, 0.0)
        if value is None:
            value = 0.0
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or value != value:
            raise InvalidInput(f"{where}.{name}: a price must be a number of dollars per million tokens, >= 0")
        out[name] = float(value)
    return Prices(**out)


def load_table(path: Path) -> dict[str, Prices]:
    """The price table file: {"<model key or provider's model id>": {"input": .., "output": .., "cached_input": ..}}."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"price table {path.name}: {exc}") from None
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InvalidInput(f"price table {path.name}: an object of model name -> prices is expected")
    return {str(name): check(values, f"price table {path.name}: {name}") for name, values in data.items()}


def cached_tokens(raw_usage: dict[str, Any] | None) -> int:
    """Prompt tokens the provider served from its cache (OpenAI's prompt_tokens_details.cached_tokens,
    Anthropic's cache_read_input_tokens)."""
    if not raw_usage:
        return 0
    details = raw_usage.get("prompt_tokens_details")
    value = details.get("cached_tokens") if isinstance(details, dict) else raw_usage.get("cache_read_input_tokens")
    return value if isinstance(value, int) else 0
