"""Users, teams, roles and API keys: bootstrap of a fresh deployment and key management."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.keys import display_prefix, generate_api_key, hash_api_key
from adaptive_engine.server.auth.permissions import BUILTIN_ROLES
from adaptive_engine.server.db.models import ApiKey, Role, Team, TeamMember, User
from adaptive_engine.server.errors import NotFound

log = logging.getLogger(__name__)

DEFAULT_TEAM = "default"
ADMIN_EMAIL = "admin@localhost"
ADMIN_KEY_FILE = "admin_api_key"


@dataclass
class BootstrapResult:
    admin: User
    # Set only when a key was generated on this start: print it once.
    generated_key: str | None = None


async def ensure_builtin_roles(session: AsyncSession) -> dict[str, Role]:
    roles = {r.key: r for r in (await session.execute(select(Role))).scalars()}
    for key, (name, permissions) in BUILTIN_ROLES.items():
        if key not in roles:
            roles[key] = Role(key=key, name=name, permissions=permissions, builtin=True)
            session.add(roles[key])
        elif roles[key].builtin:
            roles[key].permissions = permissions
    await session.flush()
    return roles


async def get_team(session: AsyncSession, key: str) -> Team:
    team = (await session.execute(select(Team).where(Team.key == key))).scalar_one_or_none()
    if team is None:
        raise NotFound(f"team '{key}' not found")
    return team


async def bootstrap(session: AsyncSession, data_dir: Path, admin_api_key: str | None) -> BootstrapResult:
    """Built-in roles, the default team and the admin user with a working key. Idempotent."""
    roles = await ensure_builtin_roles(session)
    team = (await session.execute(select(Team).where(Team.key == DEFAULT_TEAM))).scalar_one_or_none()
    if team is None:
        team = Team(key=DEFAULT_TEAM, name="Default")
        session.add(team)
    admin = (await session.execute(select(User).where(User.email == ADMIN_EMAIL))).scalar_one_or_none()
    if admin is None:
        admin = User(email=ADMIN_EMAIL, name="Admin")
        session.add(admin)
        await session.flush()
        session.add(TeamMember(user_id=admin.id, team_id=team.id, role_id=roles["admin"].id))
    await session.flush()

    generated = None
    if admin_api_key:
        existing = (
            await session.execute(select(ApiKey).where(ApiKey.key_hash == hash_api_key(admin_api_key)))
        ).scalar_one_or_none()
        if existing is None:
            session.add(_api_key_row(admin, admin_api_key, name="bootstrap (ADAPTIVE_ADMIN_API_KEY)"))
        elif existing.revoked_at is not None or existing.user_id != admin.id:
            log.warning("ADAPTIVE_ADMIN_API_KEY names a revoked key or another user's key; it is not re-enabled")
    else:
        has_key = (await session.execute(select(ApiKey.id).where(ApiKey.user_id == admin.id).limit(1))).first()
        if has_key is None:
            generated = generate_api_key()
            session.add(_api_key_row(admin, generated, name="bootstrap (generated)"))
            key_file = data_dir / ADMIN_KEY_FILE
            key_file.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(generated + "\n")
    await session.flush()
    return BootstrapResult(admin=admin, generated_key=generated)


def _api_key_row(user: User, key: str, name: str) -> ApiKey:
    return ApiKey(user_id=user.id, name=name, prefix=display_prefix(key), key_hash=hash_api_key(key))


async def create_api_key(session: AsyncSession, user: User, name: str = "") -> str:
    """Mint a key for ``user``; the plain key is returned once and never stored."""
    key = generate_api_key()
    session.add(_api_key_row(user, key, name=name))
    await session.flush()
    return key


async def get_user_by_email(session: AsyncSession, email: str) -> User:
    user = (await session.execute(select(User).where(User.email == email))).scalar_one_or_none()
    if user is None:
        raise NotFound(f"user '{email}' not found")
    return user
