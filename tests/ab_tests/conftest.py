"""A/B test fixtures: a live server whose evaluator runs only on demand, and database set-up helpers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import pytest

from adaptive_engine import Adaptive
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.engine import create_engine, create_sessionmaker
from adaptive_engine.server.db.session import unit_of_work
from adaptive_engine.server.domains.ab_tests.evaluator import stats_config
from adaptive_engine.server.domains.ab_tests.service import evaluate_active
from tests.support import LiveServer, make_settings

T = TypeVar("T")
MIN_OBS = 20


@pytest.fixture(scope="session")
def ab_server(database: str | None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    settings = make_settings(
        tmp_path_factory.mktemp("abdata"),
        database,
        ab_test_evaluation_interval_s=0,
        ab_test_min_observations=MIN_OBS,
    )
    with LiveServer(settings) as live:
        yield live


@pytest.fixture
def ab_client(ab_server: LiveServer) -> Iterator[Adaptive]:
    with Adaptive(ab_server.base_url, api_key=ab_server.api_key) as sdk:
        yield sdk


def in_db(server: LiveServer, work: Callable[..., Awaitable[T]]) -> T:
    """Run ``work(session)`` in one committed transaction on the server's database (own engine/loop)."""

    async def main() -> T:
        engine = create_engine(server.settings.resolved_database_url)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def evaluate(server: LiveServer) -> int:
    """One evaluation round of every active campaign: the evaluator service's run_once."""

    async def main() -> int:
        engine = create_engine(server.settings.resolved_database_url)
        try:
            return await evaluate_active(create_sessionmaker(engine), stats_config(server.settings))
        finally:
            await engine.dispose()

    return asyncio.run(main())


@dataclass
class Setup:
    use_case: str
    use_case_id: uuid.UUID
    models: list[str]
    model_ids: list[uuid.UUID]
    metrics: dict[str, str]


def make_setup(server: LiveServer, client: Adaptive, unique: str, n_models: int = 2) -> Setup:
    """A use case with ``n_models`` attached chat models (the first is the default), an unattached
    model, an embedding model, and feedback keys linked to it (plus one not linked)."""
    use_case = client.use_cases.create(key=f"ab-{unique}", name="A/B")

    async def work(session) -> Setup:  # noqa: ANN001
        uc_id = uuid.UUID(use_case.id)
        keys, ids = [], []
        for i in range(n_models):
            model = orm.Model(key=f"m{i}-{unique}", name=f"Model {i}", kind="chat", status="ONLINE")
            session.add(model)
            await session.flush()
            session.add(orm.ModelService(use_case_id=uc_id, model_id=model.id, is_default=i == 0))
            keys.append(model.key)
            ids.append(model.id)
        session.add(orm.Model(key=f"loose-{unique}", name="Unattached", kind="chat"))
        embed = orm.Model(key=f"emb-{unique}", name="Embedder", kind="embedding")
        session.add(embed)
        await session.flush()
        session.add(orm.ModelService(use_case_id=uc_id, model_id=embed.id))
        metrics = {}
        for name, kind, scoring in [
            ("ok", "BOOL", "HIGHER_IS_BETTER"),
            ("score", "SCALAR", "HIGHER_IS_BETTER"),
            ("latency", "SCALAR", "LOWER_IS_BETTER"),
            ("pref", "BOOL", "HIGHER_IS_BETTER"),
            ("unlinked", "BOOL", "HIGHER_IS_BETTER"),
        ]:
            metric = orm.Metric(key=f"{name}-{unique}", name=name, kind=kind, scoring_type=scoring)
            session.add(metric)
            await session.flush()
            if name != "unlinked":
                session.add(orm.UseCaseMetric(use_case_id=uc_id, metric_id=metric.id))
            metrics[name] = metric.key
        return Setup(use_case.key, uc_id, keys, ids, metrics)

    return in_db(server, work)
