"""The principal cache that spares logging requests the identity queries: a committed change to keys,
users, teams, memberships or roles in this process invalidates it at once."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from sqlalchemy import select, update

from adaptive_engine.server.auth.cache import AuthCache
from adaptive_engine.server.auth.keys import generate_api_key, hash_api_key
from adaptive_engine.server.auth.principal import authenticate
from adaptive_engine.server.db.engine import create_engine, create_sessionmaker, upgrade
from adaptive_engine.server.db.models import ApiKey, Role, User
from adaptive_engine.server.db.session import unit_of_work


def test_commits_to_identity_tables_invalidate(tmp_path: Path) -> None:
    async def run() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'auth.db'}")
        await upgrade(engine)
        maker = create_sessionmaker(engine)
        cache = AuthCache(ttl=60)
        token = generate_api_key()
        try:
            async with unit_of_work(maker) as session:
                user = User(id=uuid.uuid4(), email=f"{uuid.uuid4().hex[:6]}@x", name="u")
                session.add(user)
                session.add(Role(key=f"r-{uuid.uuid4().hex[:6]}", name="r", permissions=[]))
                await session.flush()
                session.add(ApiKey(user_id=user.id, name="k", prefix=token[:10], key_hash=hash_api_key(token)))

            async def login() -> None:
                generation = cache.generation()
                async with maker() as session:
                    cache.put(token, await authenticate(session, token), generation)

            await login()
            assert cache.get(token) is not None
            # A commit elsewhere (not identity) keeps the entry.
            async with unit_of_work(maker) as session:
                await session.execute(select(Role))
            assert cache.get(token) is not None
            # An ORM-enabled UPDATE of api_keys (as revoking does) drops it once committed.
            async with unit_of_work(maker) as session:
                await session.execute(
                    update(ApiKey).where(ApiKey.key_hash == hash_api_key(token)).values(name="renamed")
                )
            assert cache.get(token) is None
            await login()
            # A flushed change to a role drops it too; a rolled back one does not.
            async with maker() as session:
                role = (await session.execute(select(Role))).scalars().first()
                role.name = role.name + "!"
                await session.flush()
                await session.rollback()
            assert cache.get(token) is not None
            async with unit_of_work(maker) as session:
                role = (await session.execute(select(Role))).scalars().first()
                role.name = role.name + "?"
            assert cache.get(token) is None
            # A lookup that raced with a change is not cached.
            generation = cache.generation()
            async with unit_of_work(maker) as session:
                role = (await session.execute(select(Role))).scalars().first()
                role.name = role.name + "."
            async with maker() as session:
                cache.put(token, await authenticate(session, token), generation)
            assert cache.get(token) is None
        finally:
            await engine.dispose()

    asyncio.run(run())
