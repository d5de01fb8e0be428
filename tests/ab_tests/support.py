"""A/B test helpers: database set-up (models, feedback keys, traffic, feedback) and evaluation rounds."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import select

from adaptive_engine import Adaptive
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.engine import create_engine, create_sessionmaker
from adaptive_engine.server.db.session import unit_of_work
from adaptive_engine.server.domains.ab_tests.evaluator import stats_config
from adaptive_engine.server.domains.ab_tests.service import evaluate_active
from tests.support import LiveServer

T = TypeVar("T")
MIN_OBS = 20


def in_db(server: LiveServer, work: Callable[..., Awaitable[T]]) -> T:
    """Run ``work(session)`` in one committed transaction on the server's database (own engine/loop), once
    what the server queued for it is written."""
    server.settle()

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

    async def work(session) -> Setup:
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


def add_traffic(
    server,
    campaign_key: str,
    metric_key: str,
    values: dict[uuid.UUID, list[float]],
    source: str = "LIVE",
    units: dict[uuid.UUID, int] | None = None,
) -> None:
    """One completion per value (each its own session unless ``units`` says how many sessions to spread
    an arm's completions over), tagged with the campaign, with one feedback value each."""

    async def work(session) -> None:
        campaign = (
            await session.execute(select(orm.AbCampaign).where(orm.AbCampaign.key == campaign_key))
        ).scalar_one()
        metric = (await session.execute(select(orm.Metric).where(orm.Metric.key == metric_key))).scalar_one()
        for model_id, vals in values.items():
            sessions = [uuid.uuid4() for _ in range((units or {}).get(model_id, len(vals)))]
            for i, value in enumerate(vals):
                completion = orm.Completion(
                    use_case_id=campaign.use_case_id,
                    model_id=model_id,
                    messages=[{"role": "user", "content": "q"}],
                    completion="a",
                    source=source,
                    prompt_hash="h",
                    session_id=sessions[i % len(sessions)],
                    ab_campaign_id=campaign.id,
                )
                session.add(completion)
                await session.flush()
                session.add(
                    orm.Feedback(
                        completion_id=completion.id, metric_id=metric.id, use_case_id=campaign.use_case_id, value=value
                    )
                )

    in_db(server, work)


def add_duels(server, campaign_key: str, metric_key: str, duels: list[tuple[uuid.UUID, uuid.UUID, str | None]]) -> None:
    async def work(session) -> None:
        campaign = (
            await session.execute(select(orm.AbCampaign).where(orm.AbCampaign.key == campaign_key))
        ).scalar_one()
        metric = (await session.execute(select(orm.Metric).where(orm.Metric.key == metric_key))).scalar_one()
        for preferred, other, tied in duels:
            pair = []
            for model_id in (preferred, other):
                c = orm.Completion(
                    use_case_id=campaign.use_case_id,
                    model_id=model_id,
                    messages=[],
                    completion="a",
                    source="LIVE",
                    prompt_hash="p",
                    session_id=uuid.uuid4(),
                    ab_campaign_id=campaign.id,
                )
                session.add(c)
                pair.append(c)
            await session.flush()
            session.add(
                orm.Comparison(
                    use_case_id=campaign.use_case_id,
                    metric_id=metric.id,
                    preferred_completion_id=pair[0].id,
                    other_completion_id=pair[1].id,
                    tied=tied,
                )
            )

    in_db(server, work)
