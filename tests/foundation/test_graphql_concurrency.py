"""GraphQL resolves sibling fields concurrently on the request's one database session: a query with many
root fields, and lists whose items each query, must never collide on it."""

from __future__ import annotations

import asyncio

import httpx

from adaptive_engine import Adaptive

QUERY = """{
  useCases { id key permissions shares { team { key } role { key } } modelServices { id } metrics { key } }
  models(filter: {}) { key }
  metrics { key }
  teams { key }
  roles { key }
  users { email }
  me { email }
}"""


def test_sibling_fields_share_the_session_in_turns(server, unique) -> None:
    with Adaptive(server.base_url, api_key=server.api_key) as client:
        for i in range(3):
            client.use_cases.create(key=f"conc-{unique}-{i}", name="concurrency")

    async def burst() -> list[dict]:
        headers = {"Authorization": f"Bearer {server.api_key}"}
        async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=60) as http:
            responses = await asyncio.gather(*(http.post("/api/graphql", json={"query": QUERY}) for _ in range(40)))
        return [r.json() for r in responses]

    answers = asyncio.run(burst())
    errors = [a["errors"] for a in answers if a.get("errors")]
    assert errors == []
    assert all(len(a["data"]["useCases"]) >= 3 for a in answers)
