from __future__ import annotations

from collections.abc import Iterator

import pytest

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
def use_case(client, unique: str) -> str:  # noqa: ANN001
    key = f"gr-{unique}"
    client.use_cases.create(key=key)
    client.set_default_use_case(key)
    return key


def db_run(server, work):  # noqa: ANN001, ANN201
    """Run ``work(session)`` in its own engine and event loop against the server's database (test data set-up
    and checks; the server's own engine lives in the server's loop)."""
    import asyncio

    from adaptive_engine.server.db.engine import create_engine, create_sessionmaker
    from adaptive_engine.server.db.session import unit_of_work

    async def main():  # noqa: ANN202
        engine = create_engine(server.settings.resolved_database_url)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(main())


@pytest.fixture
def chat_model(server, unique: str) -> str:  # noqa: ANN001
    """A chat model row in the registry (the judge model a grader names)."""
    from adaptive_engine.server.db.models import Model

    key = f"judge-{unique}"

    async def add(session):  # noqa: ANN001, ANN202
        session.add(Model(key=key, name=key, kind="chat", provider="local", status="ONLINE"))

    db_run(server, add)
    return key
