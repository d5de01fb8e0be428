"""Users, teams, roles and API keys: bootstrap of a fresh deployment, management, and key issuing/revoking.

The permission checks are declared on the GraphQL fields (auth/guard.py); these functions validate input
and keep the invariants (unique emails/keys, known permissions, at least one admin)."""

from __future__ import annotations

import logging
import os
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.keys import (
    display_prefix,
    generate_api_key,
    hash_api_key,
)
from adaptive_engine.server.auth.permissions import ADMIN, BUILTIN_ROLES, CATALOGUE
from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.lookup import find_by_id_or_key, get_by_id_or_key, parse_uuid
from adaptive_engine.server.db.models import ApiKey, Model, Role, Team, TeamMember, UseCase, User
from adaptive_engine.server.domains.identity.records import (
    ApiKeyRecord,
    MembershipRecord,
    RoleRecord,
    TeamRecord,
    UserRecord,
)
from adaptive_engine.server.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
)
from adaptive_engine.server.timestamps import utcnow

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


# ------------------------------------------------------------------------------------------- management

EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+$")


async def get_user(session: AsyncSession, value: str | uuid.UUID) -> User:
    """A user by id or email."""
    as_id = parse_uuid(value)
    user = await session.get(User, as_id) if as_id else None
    if user is None:
        user = (
            await session.execute(select(User).where(User.email == str(value).strip().lower()))
        ).scalar_one_or_none()
    if user is None:
        raise NotFound(f"user '{value}' not found")
    return user


async def current_user(session: AsyncSession, principal: Principal) -> UserRecord | None:
    """The caller's user (none for a key of no user, or a user deleted meanwhile)."""
    user = await session.get(User, principal.user_id) if principal.user_id is not None else None
    return UserRecord.of(user) if user is not None else None


async def get_team_by_id_or_key(session: AsyncSession, value: str) -> Team:
    return await get_by_id_or_key(session, Team, value, "team")


async def get_role(session: AsyncSession, value: str) -> Role:
    return await get_by_id_or_key(session, Role, value, "role")


async def memberships(session: AsyncSession, user_id: uuid.UUID) -> list[TeamMember]:
    rows = await session.execute(
        select(TeamMember)
        .where(TeamMember.user_id == user_id)
        .order_by(TeamMember.created_at)
        .execution_options(populate_existing=True)
    )
    return list(rows.scalars())


async def memberships_of_users(
    session: AsyncSession, user_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[MembershipRecord]]:
    """The team memberships of each of the users, for a list of users at once."""
    rows = await session.execute(
        select(TeamMember)
        .where(TeamMember.user_id.in_(user_ids))
        .order_by(TeamMember.created_at)
        .execution_options(populate_existing=True)
    )
    found: dict[uuid.UUID, list[MembershipRecord]] = {}
    for member in rows.scalars():
        found.setdefault(member.user_id, []).append(MembershipRecord.of(member))
    return found


async def list_users(session: AsyncSession) -> list[UserRecord]:
    return [
        UserRecord.of(u) for u in (await session.execute(select(User).order_by(User.created_at, User.email))).scalars()
    ]


def _validate_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL_PATTERN.match(email) or len(email) > 320:
        raise InvalidInput(f"'{email}' is not a valid email address")
    return email


async def create_user(session: AsyncSession, *, email: str, name: str, teams: list[tuple[str, str]]) -> UserRecord:
    email = _validate_email(email)
    if not (name or "").strip():
        raise InvalidInput("a user needs a name")
    if (await session.execute(select(User.id).where(User.email == email))).first():
        raise AlreadyExists(f"user '{email}' already exists")
    resolved: list[tuple[Team, Role]] = []
    seen: set[uuid.UUID] = set()
    for team_key, role_key in teams:
        team = await get_team_by_id_or_key(session, team_key)
        role = await get_role(session, role_key)
        if team.id in seen:
            raise InvalidInput(f"team '{team.key}' is given twice")
        seen.add(team.id)
        resolved.append((team, role))
    user = User(email=email, name=name.strip())
    session.add(user)
    await session.flush()
    for team, role in resolved:
        session.add(TeamMember(user_id=user.id, team_id=team.id, role_id=role.id))
    await session.flush()
    return UserRecord.of(user)


async def _admin_user_ids(session: AsyncSession) -> set[uuid.UUID]:
    rows = await session.execute(select(TeamMember.user_id, Role.permissions).join(Role, Role.id == TeamMember.role_id))
    return {user_id for user_id, permissions in rows if ADMIN in (permissions or [])}


async def _ensure_an_admin_remains(session: AsyncSession, what: str) -> None:
    await session.flush()
    if not await _admin_user_ids(session):
        raise Conflict(f"{what} would leave the deployment without an admin")


async def delete_user(session: AsyncSession, value: str) -> UserRecord:
    """Delete a user; the answer carries its memberships, which cannot be read afterwards."""
    user = await get_user(session, value)
    members = await memberships(session, user.id)
    admins = await _admin_user_ids(session)
    if admins == {user.id}:
        raise Conflict(f"user '{user.email}' is the last admin and cannot be deleted")
    deleted = UserRecord.of(user, members)
    await session.delete(user)
    await session.flush()
    return deleted


async def set_team_member(
    session: AsyncSession, *, user: str, team: str, role: str
) -> tuple[UserRecord, TeamRecord, RoleRecord]:
    found_user = await get_user(session, user)
    found_team = await get_team_by_id_or_key(session, team)
    found_role = await get_role(session, role)
    member = await session.get(TeamMember, (found_user.id, found_team.id))
    if member is None:
        member = TeamMember(user_id=found_user.id, team_id=found_team.id, role_id=found_role.id)
        session.add(member)
    else:
        member.role_id = found_role.id
    await _ensure_an_admin_remains(session, f"giving '{found_user.email}' the role '{found_role.key}'")
    return UserRecord.of(found_user), TeamRecord.of(found_team), RoleRecord.of(found_role)


async def remove_team_member(session: AsyncSession, *, user: str, team: str) -> UserRecord:
    found_user = await get_user(session, user)
    found_team = await get_team_by_id_or_key(session, team)
    member = await session.get(TeamMember, (found_user.id, found_team.id))
    if member is None:
        raise NotFound(f"user '{found_user.email}' is not a member of team '{found_team.key}'")
    await session.delete(member)
    await _ensure_an_admin_remains(session, f"removing '{found_user.email}' from team '{found_team.key}'")
    return UserRecord.of(found_user)


async def list_teams(session: AsyncSession, principal: Principal) -> list[TeamRecord]:
    """Every team for admins and team managers (they add members to any team); the caller's own teams for
    everyone else, so team names do not leak across tenants."""
    query = select(Team).order_by(Team.created_at, Team.key)
    if not principal.has_global("team:manage"):
        query = query.where(Team.id.in_(list(principal.team_permissions)))
    return [TeamRecord.of(t) for t in (await session.execute(query)).scalars()]


async def create_team(session: AsyncSession, *, key: str | None, name: str) -> TeamRecord:
    from adaptive_engine.server.domains.use_cases.service import (
        key_from_name,
        validate_key,
    )

    key = validate_key(key if key is not None else key_from_name(name or ""), "team key")
    if (await session.execute(select(Team.id).where(Team.key == key))).first():
        raise AlreadyExists(f"team '{key}' already exists")
    team = Team(key=key, name=(name or key).strip() or key)
    session.add(team)
    await session.flush()
    return TeamRecord.of(team)


async def list_roles(session: AsyncSession) -> list[RoleRecord]:
    return [
        RoleRecord.of(r) for r in (await session.execute(select(Role).order_by(Role.created_at, Role.key))).scalars()
    ]


def validate_permissions(permissions: list[str]) -> list[str]:
    unknown = [p for p in permissions if p not in CATALOGUE]
    if unknown:
        raise InvalidInput(
            f"unknown permission(s): {', '.join(unknown)} (see permissions.list())", details={"unknown": unknown}
        )
    if not permissions:
        raise InvalidInput("a role needs at least one permission")
    return list(dict.fromkeys(permissions))


async def create_role(session: AsyncSession, *, key: str | None, name: str, permissions: list[str]) -> RoleRecord:
    from adaptive_engine.server.domains.use_cases.service import (
        key_from_name,
        validate_key,
    )

    key = validate_key(key if key is not None else key_from_name(name or ""), "role key")
    granted = validate_permissions(permissions)
    if (await session.execute(select(Role.id).where(Role.key == key))).first():
        raise AlreadyExists(f"role '{key}' already exists")
    role = Role(key=key, name=(name or key).strip() or key, permissions=granted, builtin=False)
    session.add(role)
    await session.flush()
    return RoleRecord.of(role)


def permission_catalogue() -> list[str]:
    return sorted(CATALOGUE)


# --------------------------------------------------------------------------------------------- API keys


async def _keys_owner(session: AsyncSession, principal: Principal, user: str | None) -> User:
    """The user whose keys are listed or minted: ``user`` when given, else the caller."""
    if user:
        return await get_user(session, user)
    own = await session.get(User, principal.user_id)
    if own is None:
        raise NotFound("the caller's user no longer exists")
    return own


def _may_manage_keys_of(principal: Principal, user: User) -> None:
    principal.require_keys_of(user.id, f"user '{user.email}'")


async def list_api_keys(session: AsyncSession, principal: Principal, user: str | None = None) -> list[ApiKeyRecord]:
    target = await _keys_owner(session, principal, user)
    _may_manage_keys_of(principal, target)
    rows = await session.execute(
        select(ApiKey).where(ApiKey.user_id == target.id, ApiKey.job_id.is_(None)).order_by(ApiKey.created_at)
    )
    return [ApiKeyRecord.of(k) for k in rows.scalars()]


async def issue_api_key(
    session: AsyncSession,
    principal: Principal,
    *,
    user: str | None = None,
    name: str = "",
    expires_at: datetime | None = None,
    allowed_models: list[str] | None = None,
    use_cases: list[str] | None = None,
) -> tuple[ApiKeyRecord, str]:
    """Mint a key; optionally scoped (enforced on the data plane): an expiry, the model keys and the use
    cases it may call."""
    target = await _keys_owner(session, principal, user)
    _may_manage_keys_of(principal, target)
    if len(name) > 200:
        raise InvalidInput("a key name has at most 200 characters")
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput("expiresAt must be in the future")
    if allowed_models is not None:
        known = set((await session.execute(select(Model.key).where(Model.key.in_(allowed_models)))).scalars())
        missing = [m for m in allowed_models if m not in known]
        if missing:
            raise InvalidInput(f"allowedModels: no model with key {', '.join(repr(m) for m in missing)}")
    scope_ids = None
    if use_cases is not None:
        scope_ids = []
        for value in use_cases:
            found = await find_by_id_or_key(session, UseCase, value)
            if found is None:
                raise InvalidInput(f"useCases: use case '{value}' not found")
            scope_ids.append(str(found.id))
    plain = generate_api_key()
    row = _api_key_row(target, plain, name=name)
    row.expires_at = expires_at
    row.allowed_models = list(dict.fromkeys(allowed_models)) if allowed_models is not None else None
    row.use_case_ids = scope_ids
    row.user = target
    session.add(row)
    await session.flush()
    return ApiKeyRecord.of(row), plain


async def revoke_api_key(session: AsyncSession, principal: Principal | None, key_id: str) -> ApiKeyRecord:
    """Revoke a key by id (or by its display prefix). ``principal`` None: the operator (CLI)."""
    as_id = parse_uuid(key_id)
    row = await session.get(ApiKey, as_id) if as_id else None
    if row is None and not as_id:
        matches = list((await session.execute(select(ApiKey).where(ApiKey.prefix == key_id))).scalars())
        if len(matches) > 1:
            raise InvalidInput(f"prefix '{key_id}' matches several keys: use the key id")
        row = matches[0] if matches else None
    if row is None:
        raise NotFound(f"API key '{key_id}' not found")
    if principal is not None:
        try:
            _may_manage_keys_of(principal, row.user)
        except NotFound:
            raise NotFound(f"API key '{key_id}' not found") from None
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
    return ApiKeyRecord.of(row)
