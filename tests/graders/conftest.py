from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.ab_tests.support import in_db
from tests.graders.reward_servers import BrokenServer, LengthRewardServer, RunningRewardServer, WordRewardServer


@pytest.fixture(scope="session")
def word_server() -> Iterator[RunningRewardServer]:
    running = RunningRewardServer(WordRewardServer)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def length_server() -> Iterator[RunningRewardServer]:
    running = RunningRewardServer(LengthRewardServer)
    yield running
    running.stop()


@pytest.fixture(scope="session")
def broken_server() -> Iterator[BrokenServer]:
    running = BrokenServer(delay_s=3.0)
    yield running
    running.stop()


@pytest.fixture
def use_case(client, unique: str) -> str:
    key = f"gr-{unique}"
    client.use_cases.create(key=key)
    client.set_default_use_case(key)
    return key


@pytest.fixture
def chat_model(server, unique: str) -> str:
    """A chat model row in the registry (the judge model a grader names)."""
    from adaptive_engine.server.db.models import Model

    key = f"judge-{unique}"

    async def add(session):
        session.add(Model(key=key, name=key, kind="chat", provider="local", status="ONLINE"))

    in_db(server, add)
    return key
