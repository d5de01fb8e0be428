"""The registry of reward servers (remote environments) and the endpoint test."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.lookup import get_by_id_or_key
from adaptive_engine.server.db.models import RemoteEnv
from adaptive_engine.server.domains.graders import remote
from adaptive_engine.server.domains.graders.records import RemoteEnvRecord
from adaptive_engine.server.domains.use_cases.service import key_from_name, validate_key
from adaptive_engine.server.errors import AlreadyExists
from adaptive_engine.server.outbound import OutboundGuard

PERMISSION = "grader:write"
PROBE_TIMEOUT_S = 10.0


@dataclass
class EndpointTest:
    online: bool
    info: remote.ServerInfo | None = None
    error: str | None = None


async def test_endpoint(principal: Principal, guard: OutboundGuard, url: str) -> EndpointTest:
    """Whether a reward server answers /info. A URL or address the guard refuses is an input error; a server
    that cannot be used is reported offline, with the cause for admins only (see remote.RemoteFailure)."""
    principal.require_global(PERMISSION)
    url = remote.validate_url(url, guard)
    try:
        async with remote.RewardServerClient(url, guard, timeout_s=PROBE_TIMEOUT_S) as client:
            info = await client.info()
    except remote.RemoteFailure as failure:
        return EndpointTest(online=False, error=failure.shown_to(principal.is_admin))
    return EndpointTest(online=True, info=info)


async def add_remote_env(
    session: AsyncSession,
    principal: Principal,
    guard: OutboundGuard,
    *,
    url: str,
    key: str | None,
    name: str | None,
    description: str | None,
) -> RemoteEnvRecord:
    principal.require_global(PERMISSION)
    url = remote.validate_url(url, guard)
    try:
        async with remote.RewardServerClient(url, guard, timeout_s=PROBE_TIMEOUT_S) as client:
            info = await client.info()
            schema = await client.metadata_schema()
    except remote.RemoteFailure as failure:
        raise failure.for_caller(principal.is_admin) from None
    key = key or key_from_name(name or info.name) or "reward-server"
    validate_key(key, "remote environment key")
    if (await session.execute(select(RemoteEnv.id).where(RemoteEnv.key == key))).first():
        raise AlreadyExists(f"remote environment '{key}' already exists")
    env = RemoteEnv(
        key=key,
        name=name or info.name,
        url=url,
        description=description or info.description,
        version=info.version,
        status="ONLINE",
        metadata_schema=schema,
    )
    session.add(env)
    await session.flush()
    return RemoteEnvRecord.of(env)


async def list_remote_envs(session: AsyncSession, principal: Principal) -> list[RemoteEnvRecord]:
    rows = await session.execute(select(RemoteEnv).order_by(RemoteEnv.created_at, RemoteEnv.key))
    return [RemoteEnvRecord.of(e) for e in rows.scalars()]


async def remove_remote_env(session: AsyncSession, principal: Principal, id_or_key: str) -> RemoteEnvRecord:
    principal.require_global(PERMISSION)
    env = await get_by_id_or_key(session, RemoteEnv, id_or_key, "remote environment")
    removed = RemoteEnvRecord.of(env)
    await session.delete(env)
    await session.flush()
    return removed
