"""Helpers for interaction and feedback tests."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from adaptive_engine.server.db.engine import create_engine, create_sessionmaker, upgrade
from adaptive_engine.server.db.models import Metric, Model, UseCase
from adaptive_engine.server.db.session import unit_of_work
from tests.support import LiveServer


async def writer_database(
    database: str | None, tmp_path: Path, metric_kind: str = "BOOL"
) -> tuple[AsyncEngine, async_sessionmaker[AsyncSession], UseCase, Metric]:
    """A migrated database of its own for the writer's tests (the ``database`` fixture's, or a SQLite file in
    ``tmp_path``), with a use case and a feedback key of ``metric_kind``: (engine, sessions, use case, key)."""
    engine = create_engine(database or f"sqlite+aiosqlite:///{tmp_path / 'writer.db'}")
    await upgrade(engine)
    maker = create_sessionmaker(engine)
    suffix = uuid.uuid4().hex[:8]
    async with maker() as session:
        use_case = UseCase(key=f"uc-{suffix}", name="uc")
        metric = Metric(key=f"key-{suffix}", name="key", kind=metric_kind)
        session.add_all([use_case, metric])
        await session.commit()
    return engine, maker, use_case, metric


def seed_models(server: LiveServer, *keys: str) -> None:
    """Registry rows for model keys (the registry's own API is another domain's): inserted with a
    separate engine on the server's database."""

    async def run() -> None:
        engine = create_engine(server.settings.resolved_database_url)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                for key in keys:
                    session.add(
                        Model(id=uuid.uuid4(), key=key, name=key, kind="chat", provider="open_ai", is_external=True)
                    )
        finally:
            await engine.dispose()

    asyncio.run(run())


def seed_ab_campaign(server: LiveServer, use_case: str, metric: str, key: str) -> str:
    """An A/B campaign row (created by the A/B test domain in real use), for filtering traffic by campaign."""
    from sqlalchemy import select

    from adaptive_engine.server.db import models as orm

    async def run() -> str:
        engine = create_engine(server.settings.resolved_database_url)
        try:
            async with unit_of_work(create_sessionmaker(engine)) as session:
                use_case_id = (
                    await session.execute(select(orm.UseCase.id).where(orm.UseCase.key == use_case))
                ).scalar_one()
                metric_id = (await session.execute(select(orm.Metric.id).where(orm.Metric.key == metric))).scalar_one()
                campaign = orm.AbCampaign(
                    id=uuid.uuid4(),
                    key=key,
                    name=key,
                    use_case_id=use_case_id,
                    metric_id=metric_id,
                    feedback_type="DIRECT",
                    traffic_split=1.0,
                    status="DONE",
                )
                session.add(campaign)
                return str(campaign.id)
        finally:
            await engine.dispose()

    return asyncio.run(run())


def rest(server: LiveServer, path: str, body: object) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/api/v1{path}", json=body, headers={"Authorization": f"Bearer {server.api_key}"}, timeout=30
    )


def graphql(server: LiveServer, query: str, variables: dict | None = None) -> dict:
    response = httpx.post(
        f"{server.base_url}/api/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {server.api_key}"},
        timeout=30,
    )
    return response.json()


def msgs(text: str = "What is the capital of France?") -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]
