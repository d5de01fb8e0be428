"""A world for the usage tests: a use case, two users with keys, priced external models served by the fake
OpenAI-compatible upstream (tests/inference/fixtures.py), all registered through our SDK."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import Any

import openai
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from adaptive_engine import Adaptive
from tests.inference.fixtures import API_KEY

# Dollars per million tokens: a chat call of the fake upstream (5 prompt tokens, 1 of them cached, and 3
# completion tokens) costs $0.0105.
PRICES = {"input": 1000.0, "output": 2000.0, "cached_input": 500.0}


def price_of(prompt_tokens: float, completion_tokens: float, cached_tokens: float) -> float:
    return (
        (prompt_tokens - cached_tokens) * PRICES["input"]
        + cached_tokens * PRICES["cached_input"]
        + completion_tokens * PRICES["output"]
    ) / 1_000_000


@dataclass
class World:
    base_url: str
    admin: Adaptive
    s: str
    keys: dict[str, str] = field(default_factory=dict)  # who -> API key
    key_ids: dict[str, str] = field(default_factory=dict)
    upstream: Any = None

    def k(self, name: str) -> str:
        return f"{name}-{self.s}"

    def openai(self, who: str) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.base_url + "/api/v1", api_key=self.keys[who], max_retries=0)

    def chat(self, who: str, model: str | None = None) -> Any:
        return self.openai(who).chat.completions.create(
            model=model or self.k("uc"), messages=[{"role": "user", "content": "hello there"}]
        )

    def sdk(self, who: str) -> Adaptive:
        return Adaptive(self.base_url, api_key=self.keys[who], max_retries=0)

    def mint(self, who: str, **scope: Any) -> str:
        created = self.admin.api_keys.create(name=who, user=f"{who.split('.')[0]}-{self.s}@example.com", **scope)
        self.keys[who], self.key_ids[who] = created.key, created.api_key.id
        return created.key


def build(base_url: str, admin_key: str, upstream: Any) -> World:
    admin = Adaptive(base_url, api_key=admin_key, max_retries=0)
    w = World(base_url, admin, uuid.uuid4().hex[:6], upstream=upstream)
    admin.teams.create(key=w.k("team"))
    for uc in ("uc", "other"):
        admin.use_cases.create(key=w.k(uc), team=w.k("team"))
    # key -> the fake upstream's model name: "slow" answers after upstream.slow_seconds, fail500x9-* fails 9 times.
    models = {
        w.k("priced"): w.k("priced"),
        w.k("free"): w.k("free"),
        f"fail500x9-{w.s}": f"fail500x9-{w.s}",
        w.k("slow"): "slow",
    }
    for key, upstream_name in models.items():
        admin.models.add_external(
            name=key,
            key=key,
            external_model_id=upstream_name,
            api_key=API_KEY,
            provider="open_ai",
            endpoint=upstream.base_url,
            prices=None if key == w.k("free") else PRICES,
        )
        admin.models.attach(key, use_case=w.k("uc"), make_default=key == w.k("priced"))
    admin.models.attach(w.k("priced"), use_case=w.k("other"), make_default=True)
    for who, role in (("alice", "editor"), ("bob", "editor"), ("vera", "viewer")):
        admin.users.create(email=f"{who}-{w.s}@example.com", name=who, teams_with_role=[(w.k("team"), role)])
        w.mint(who)
    return w


def sql(database_url: str, query: str, **params: Any) -> list[Any]:
    """Rows of ``query`` read straight from the server's database (what the test compares the API with)."""

    async def run() -> list[Any]:
        engine = create_async_engine(database_url)
        try:
            async with engine.connect() as conn:
                return list((await conn.execute(text(query), params)).all())
        finally:
            await engine.dispose()

    return asyncio.run(run())
