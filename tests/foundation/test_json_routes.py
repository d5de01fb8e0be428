"""The data plane's JSON routes (rest/json_route.py: logging), answered past FastAPI's router: the same
errors, guard order, metrics and session handling as any other route."""

from __future__ import annotations

import asyncio
import time
import uuid

import httpx
import pytest
from sqlalchemy import text

from adaptive_engine import Adaptive
from adaptive_engine.server.db.base import new_id
from adaptive_engine.server.db.engine import create_engine, create_sessionmaker
from adaptive_engine.server.db.session import LazySession
from tests.support import LiveServer


def post(server: LiveServer, path: str, **kwargs: object) -> httpx.Response:
    headers = {"Authorization": f"Bearer {server.api_key}", "content-type": "application/json"}
    return httpx.post(f"{server.base_url}/api/v1{path}", headers=headers, timeout=30, **kwargs)


@pytest.fixture
def use_case(client: Adaptive, unique: str) -> str:
    client.use_cases.create(key=f"json-{unique}")
    return f"json-{unique}"


def test_bad_bodies_get_typed_errors_and_store_nothing(server: LiveServer, client: Adaptive, use_case: str) -> None:
    cases = [
        (b"", "a JSON body is required"),
        (b"{not json", "the body is not valid JSON"),
        (b'{"use_case": "' + use_case.encode() + b'"}', "completion: Field required"),
        (b'{"use_case": "' + use_case.encode() + b'", "completion": 3}', "completion: Input should be a valid string"),
        (b"[]", "the batch is empty"),
    ]
    for body, needle in cases:
        r = post(server, "/interactions", content=body)
        assert r.status_code == 400, (body, r.text)
        error = r.json()["error"]
        assert error["code"] == "INVALID_INPUT" and needle in error["message"], (body, error)
    assert client.interactions.list(use_case=use_case).total_count == 0


def test_the_guard_runs_before_the_body_is_validated(server: LiveServer) -> None:
    # A use case that does not exist and a body missing its completion: the use case is what the caller hears of.
    r = post(server, "/interactions", json={"use_case": "no-such-use-case"})
    assert r.status_code == 404 and "use case 'no-such-use-case' not found" in r.json()["error"]["message"]
    r = post(server, "/feedback", json={"completion_id": str(uuid.uuid4()), "metric": "none", "value": 1})
    assert r.status_code == 404


def test_answers_are_json_with_the_created_status_and_counted_by_route(server: LiveServer, use_case: str) -> None:
    r = post(
        server,
        "/interactions",
        json={"use_case": use_case, "completion": "hi", "messages": [{"role": "user", "content": "hello"}]},
    )
    assert r.status_code == 201 and r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"completion_id", "session_id", "feedback_ids"} and body["feedback_ids"] == []
    assert uuid.UUID(body["completion_id"]).version == 7
    metrics = httpx.get(f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {server.api_key}"}).text
    assert 'route="/interactions",status="201"' in metrics


def test_lazy_session_opens_on_first_use_only(tmp_path) -> None:
    async def main() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'lazy.db'}")
        opened = []

        def open_session():
            opened.append(1)
            return create_sessionmaker(engine)()

        try:
            unused = LazySession(open_session)
            await unused.rollback()
            await unused.close()
            assert unused.never_opened and opened == []
            used = LazySession(open_session)
            assert (await used.execute(text("select 41 + 1"))).scalar_one() == 42
            assert not used.never_opened and opened == [1]
            await used.rollback()
            await used.close()
        finally:
            await engine.dispose()

    asyncio.run(main())


def test_new_ids_are_uuid7_and_ordered_in_time() -> None:
    first = new_id()
    time.sleep(0.002)
    later = [new_id() for _ in range(20_000)]
    assert first.version == 7 and first.variant == uuid.RFC_4122
    assert all(first < i for i in later)  # a later millisecond sorts after
    assert len(set(later)) == len(later)
    assert abs(int(first.hex[:12], 16) - time.time_ns() // 1_000_000) < 5_000
