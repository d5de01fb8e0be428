"""interactions.list(order=...) on every documented field, both directions, keyset cursors across ties
and NULLs, on SQLite and PostgreSQL, through the SDK."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import update

from adaptive_engine.sdk.errors import ValidationError
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.engine import create_engine, create_sessionmaker
from adaptive_engine.server.db.session import unit_of_work
from tests.interactions.helpers import msgs, seed_models
from tests.support import LiveServer

# completion text, model (0/1), day, cost, latency_ms, prompt_tokens: repeated values make ties, None makes NULLs.
ROWS = [
    ("beta", 0, "2024-02-01", 0.5, 12.0, 7),
    ("alpha", 1, "2024-02-02", None, None, None),
    ("beta", 1, "2024-02-03", 0.5, 3.5, 7),
    ("gamma", 0, "2024-02-04", 0.1, None, 2),
    ("alpha", 0, "2024-02-05", None, 12.0, None),
    ("beta", 1, "2024-02-06", 0.5, 1.0, 9),
    ("delta", 0, "2024-02-07", 0.2, 3.5, 2),
]


def _set_usage(server: LiveServer, usage: dict[str, dict]) -> None:
    """Usage metadata is written by the inference path when it serves a request; logged interactions
    carry none, so the test gives some rows values (and leaves others NULL) on the server's database."""

    async def run() -> None:
        engine = create_engine(server.settings.resolved_database_url)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                for completion_id, values in usage.items():
                    await session.execute(
                        update(orm.Completion).where(orm.Completion.id == uuid.UUID(completion_id)).values(**values)
                    )
        finally:
            await engine.dispose()

    asyncio.run(run())


@pytest.fixture
def logged(client, server, unique: str) -> dict:
    uc, models = f"ord-{unique}", [f"ma-{unique}", f"mb-{unique}"]
    client.use_cases.create(uc)
    client.set_default_use_case(uc)
    seed_models(server, *models)
    rows, usage = {}, {}
    for i, (text, model, day, cost, latency, tokens) in enumerate(ROWS):
        out = client.interactions.create(
            messages=msgs(f"prompt {i % 3}"), completion=text, model=models[model], created_at=f"{day}T12:00:00Z"
        )
        usage[out.completion_id] = {"cost": cost, "latency_ms": latency, "prompt_tokens": tokens}
        rows[out.completion_id] = {
            "completion": text,
            "model": models[model],
            "created_at": day,
            "id": out.completion_id,
            **usage[out.completion_id],
        }
    _set_usage(server, usage)
    for node in client.interactions.list(page={"first": 100}).nodes:
        rows[node.id]["prompt_hash"] = node.prompt_hash
    return rows


def _expected(rows: dict, field: str, descending: bool) -> list[str]:
    # NULLs sort as the largest value; ties break on id (canonical UUID text orders like its bytes).
    ordered = sorted(rows.values(), key=lambda r: (r[field] is None, r[field] if r[field] is not None else 0, r["id"]))
    ids = [r["id"] for r in ordered]
    return ids[::-1] if descending else ids


def _walk(client, order: list, size: int, backwards: bool = False) -> list[str]:
    seen, cursor = [], None
    while True:
        if backwards:
            page = client.interactions.list(order=order, page={"last": size, **({"before": cursor} if cursor else {})})
            seen = [n.id for n in page.nodes] + seen
            if not page.page_info.has_previous_page:
                return seen
            cursor = page.page_info.start_cursor
        else:
            page = client.interactions.list(order=order, page={"first": size, **({"after": cursor} if cursor else {})})
            seen += [n.id for n in page.nodes]
            if not page.page_info.has_next_page:
                return seen
            cursor = page.page_info.end_cursor


FIELDS = [
    ("completion", "completion"),
    ("model", "model"),
    ("createdAt", "created_at"),
    ("cost", "cost"),
    ("latency_ms", "latency_ms"),
    ("promptTokens", "prompt_tokens"),
    ("prompt_hash", "prompt_hash"),
    ("id", "id"),
]


@pytest.mark.parametrize(("field", "key"), FIELDS)
def test_every_field_both_directions_paged_across_ties(client, logged: dict, field: str, key: str) -> None:
    for direction in ("ASC", "DESC"):
        order = [{"field": field, "order": direction}]
        expected = _expected(logged, key, direction == "DESC")
        assert [n.id for n in client.interactions.list(order=order, page={"first": 100}).nodes] == expected, direction
        assert _walk(client, order, 2) == expected, direction
        assert _walk(client, order, 3, backwards=True) == expected, direction


def test_order_refusals(client, logged: dict) -> None:
    with pytest.raises(ValidationError, match="labels"):
        client.interactions.list(order=[{"field": "labels", "order": "ASC"}])
    with pytest.raises(ValidationError):
        client.interactions.list(order=[{"field": "cost", "order": "ASC"}, {"field": "id", "order": "ASC"}])
    by_cost = client.interactions.list(order=[{"field": "cost", "order": "ASC"}], page={"first": 2})
    # A cursor made under one ordering is refused under another, rather than silently misplacing the page.
    with pytest.raises(ValidationError, match="cost"):
        client.interactions.list(
            order=[{"field": "model", "order": "ASC"}], page={"first": 2, "after": by_cost.page_info.end_cursor}
        )
    with pytest.raises(ValidationError):
        client.interactions.list(order=[{"field": "cost", "order": "ASC"}], page={"first": 2, "after": "not-a-cursor"})
