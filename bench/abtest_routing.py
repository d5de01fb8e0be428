"""Cost of A/B routing on the inference path, with the router's per-use-case cache and without it.

    python bench/abtest_routing.py [--requests 2000] [--database-url URL]

Every chat request to a use case without an explicit model asks the router whether the use case has an
active campaign.  The router keeps the answer (campaign or none) for ``ttl_s``; this measures the
per-request cost of that call with the cache (ttl 1 s) and without it (ttl 0: one query per request),
for a use case with an active campaign and for one without, in the same run on the same database
(SQLite in a temporary folder unless a URL is given).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from adaptive_engine.server.db import models as orm  # noqa: E402
from adaptive_engine.server.db.engine import create_engine, create_sessionmaker, upgrade  # noqa: E402
from adaptive_engine.server.domains.ab_tests.routing import AbRouter  # noqa: E402


async def seed(sessionmaker) -> tuple[uuid.UUID, uuid.UUID]:
    tag = uuid.uuid4().hex[:8]
    async with sessionmaker() as session:
        with_campaign = orm.UseCase(key=f"bench-ab-{tag}", name="with campaign")
        without = orm.UseCase(key=f"bench-plain-{tag}", name="without campaign")
        metric = orm.Metric(key=f"bench-{tag}", name="thumb", kind="BOOL")
        models = [orm.Model(key=f"bench-m{i}-{tag}", name=f"m{i}") for i in range(2)]
        session.add_all([with_campaign, without, metric, *models])
        await session.flush()
        campaign = orm.AbCampaign(
            key=f"bench-{tag}",
            name="bench",
            use_case_id=with_campaign.id,
            metric_id=metric.id,
            feedback_type="DIRECT",
            traffic_split=0.5,
            active_use_case_id=with_campaign.id,
        )
        campaign.arms = [orm.AbCampaignArm(model=m, model_id=m.id, position=i) for i, m in enumerate(models)]
        session.add(campaign)
        await session.commit()
        return with_campaign.id, without.id


async def measure(sessionmaker, use_case_id: uuid.UUID, ttl_s: float, requests: int) -> float:
    """Mean seconds per routing decision, one short session per request as the inference path uses."""
    router = AbRouter(ttl_s=ttl_s)
    started = time.perf_counter()
    for i in range(requests):
        async with sessionmaker() as session:
            await router.route(session, use_case_id, session_id=uuid.UUID(int=i + 1))
    return (time.perf_counter() - started) / requests


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(folder) / 'bench.db'}"
        engine = create_engine(url)
        await upgrade(engine)
        sessionmaker = create_sessionmaker(engine)
        with_campaign, without = await seed(sessionmaker)
        print(f"database: {url.split(':')[0]}; {args.requests} requests each")
        print(f"{'use case':<22}{'uncached (us/req)':>19}{'cached (us/req)':>17}{'speed-up':>10}")
        for label, use_case_id in (("with a campaign", with_campaign), ("without a campaign", without)):
            await measure(sessionmaker, use_case_id, 1.0, 50)  # warm up connections and caches
            uncached = await measure(sessionmaker, use_case_id, 0.0, args.requests)
            cached = await measure(sessionmaker, use_case_id, 1.0, args.requests)
            print(f"{label:<22}{uncached * 1e6:>19.0f}{cached * 1e6:>17.0f}{uncached / cached:>9.1f}x")
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
