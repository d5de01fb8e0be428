"""Who is calling, and the one place that decides what they may do."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, false, select, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from adaptive_engine.server.auth.keys import hash_api_key
from adaptive_engine.server.auth.permissions import ADMIN
from adaptive_engine.server.db import changes
from adaptive_engine.server.db.models import ApiKey, Role, TeamMember, UseCaseShare, User
from adaptive_engine.server.errors import NotFound, PermissionDenied, Unauthenticated
from adaptive_engine.server.timestamps import as_utc, utcnow

# What it takes to see and run the jobs that belong to no use case (model conversions).
REGISTRY_PERMISSION = "model:register"

# The only global right a job's key keeps (when its creator holds it): opening chunked uploads (the SDK
# uploads a dataset over 5 MB in parts; the dataset itself is still made in the job's use case only). Its
# process needs nothing else outside its use case, and any other global right (users, teams, roles,
# integrations, use cases, compute pools, the model registry...) would let a recipe act as its creator, an
# admin say, beyond the job.
JOB_GLOBAL_PERMISSIONS = frozenset({"dataset:write"})
# Kept by a job's key for its own job only, on the job's own routes (/jobs/{its id}/models...): registering
# the models that job made (a trained model, a model conversion's import); see require_registry_for_job.
# Never external models, hub imports, server folders or compute configs (the registry's other mutations).
JOB_OWN_PERMISSIONS = frozenset({REGISTRY_PERMISSION})


def allows(granted: frozenset[str], permission: str) -> bool:
    """Whether permissions granted on a use case include ``permission`` (``admin`` includes every one)."""
    return ADMIN in granted or permission in granted


# What a caller's rights on a use case are computed from (team memberships come with the principal).
GRANT_TABLES = (UseCaseShare, Role)


@dataclass
class Principal:
    user_id: uuid.UUID
    email: str
    # team id -> permissions of the user's role in that team
    team_permissions: dict[uuid.UUID, frozenset[str]] = field(default_factory=dict)
    # Set when the key was minted for a job: the key works only on that job's use case.
    job_id: uuid.UUID | None = None
    # The use case of that job: a job's key sees nothing else.
    job_use_case_id: uuid.UUID | None = None
    # The API key called with (None: a console session or the admin key of the settings), and its scope on
    # the data plane (see domains/usage/scope.py): expiry, model keys, use case ids (None: unrestricted).
    api_key_id: uuid.UUID | None = None
    key_expires_at: datetime | None = None
    allowed_models: frozenset[str] | None = None
    allowed_use_cases: frozenset[uuid.UUID] | None = None
    # Rights per use case, computed once per generation of what decides them (see use_case_permissions).
    _grants: dict[uuid.UUID, tuple[int, frozenset[str]]] = field(default_factory=dict, repr=False, compare=False)

    @property
    def held_permissions(self) -> frozenset[str]:
        """What the user's team roles grant, together (a job's key is capped by :meth:`_capped`)."""
        return frozenset().union(*self.team_permissions.values()) if self.team_permissions else frozenset()

    def _capped(self, granted: frozenset[str]) -> frozenset[str]:
        """THE rule for a job's key: outside its use case, the creator's rights within JOB_GLOBAL_PERMISSIONS."""
        if self.job_id is None:
            return granted
        return JOB_GLOBAL_PERMISSIONS if ADMIN in granted else granted & JOB_GLOBAL_PERMISSIONS

    @property
    def global_permissions(self) -> frozenset[str]:
        return self._capped(self.held_permissions)

    @property
    def is_admin(self) -> bool:
        return ADMIN in self.global_permissions

    def has_global(self, permission: str) -> bool:
        granted = self.global_permissions
        return ADMIN in granted or permission in granted

    def require_global(self, permission: str) -> None:
        if self.has_global(permission):
            return
        if self.job_id is not None and self._creator_holds(permission):
            raise PermissionDenied(
                f"a job's API key cannot use permission '{permission}' here"
                + (
                    ": it registers models only through its job's own routes"
                    if permission in JOB_OWN_PERMISSIONS
                    else ""
                )
            )
        raise PermissionDenied(f"permission '{permission}' is required")

    def _creator_holds(self, permission: str) -> bool:
        held = self.held_permissions
        return ADMIN in held or permission in held

    def require_registry_for_job(self, job_id: uuid.UUID) -> None:
        """THE check for registering a model a job made, through that job's routes: a job's key for its own
        job only, when its creator holds model:register; any other caller needs model:register itself."""
        if self.job_id is None:
            self.require_global(REGISTRY_PERMISSION)
            return
        if self.job_id != job_id:
            raise PermissionDenied("this key belongs to another job")
        if not self._creator_holds(REGISTRY_PERMISSION):
            raise PermissionDenied(f"permission '{REGISTRY_PERMISSION}' is required")

    def has_team(self, permission: str, team_id: uuid.UUID) -> bool:
        if self.is_admin:
            return True
        granted = self._capped(self.team_permissions.get(team_id, frozenset()))
        return ADMIN in granted or permission in granted

    def require_team(self, permission: str, team_id: uuid.UUID, team_key: str = "") -> None:
        """Raise unless the caller's role in that team grants ``permission`` (admins pass everywhere)."""
        if not self.has_team(permission, team_id):
            raise PermissionDenied(f"permission '{permission}' is required in team '{team_key or team_id}'")

    def sees_use_case(self, column: ColumnElement[Any] | InstrumentedAttribute[Any]) -> ColumnElement[bool]:
        """A SQL condition on a use-case id ``column`` for lists: the use cases shared with the caller's teams
        (all of them for an admin); for a job's key, only its own use case among those."""
        if ADMIN in self.held_permissions:
            shared: ColumnElement[bool] = true()
        else:
            teams = list(self.team_permissions)
            shared = column.in_(select(UseCaseShare.use_case_id).where(UseCaseShare.team_id.in_(teams)))
        if self.job_id is None:
            return shared
        return (column == self.job_use_case_id) & shared if self.job_use_case_id is not None else false()

    def require_keys_of(self, user_id: uuid.UUID, what: str) -> None:
        """Raise unless the caller may list, mint or revoke the API keys of ``user_id``: their own, or anyone's
        with user:manage (others' are reported as not found). Never with a job's key: a key minted with it
        would outlive the job with its creator's full rights."""
        if self.job_id is not None:
            raise PermissionDenied("a job's API key cannot list, create or revoke API keys")
        if user_id != self.user_id and not self.has_global("user:manage"):
            raise NotFound(f"{what} not found")

    async def use_case_permissions(self, session: AsyncSession, use_case_id: uuid.UUID) -> frozenset[str]:
        return (await self.use_case_permissions_many(session, [use_case_id]))[use_case_id]

    async def use_case_permissions_many(
        self, session: AsyncSession, use_case_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, frozenset[str]]:
        """The caller's permissions on each use case (one query for all those not memoized)."""
        out: dict[uuid.UUID, frozenset[str]] = {}
        wanted = []
        for use_case_id in dict.fromkeys(use_case_ids):
            if self.job_id is not None and use_case_id != self.job_use_case_id:
                out[use_case_id] = frozenset()
            # Not is_admin: a job's key of an admin is admin on its own use case (the job acts there for
            # its creator), and the line above already kept it off every other.
            elif ADMIN in self.held_permissions:
                out[use_case_id] = frozenset({ADMIN})
            else:
                wanted.append(use_case_id)
        if not wanted:
            return out
        # Memoized: principals are cached across requests, and hot paths ask this on every call. A share or
        # role changed by this very request (not committed yet) is read fresh.
        generation = changes.generation(GRANT_TABLES)
        fresh = changes.pending(session, GRANT_TABLES)
        unknown = []
        for use_case_id in wanted:
            memo = self._grants.get(use_case_id)
            if memo is not None and memo[0] == generation and not fresh:
                out[use_case_id] = memo[1]
            else:
                unknown.append(use_case_id)
        if not unknown:
            return out
        shares = (await session.execute(select(UseCaseShare).where(UseCaseShare.use_case_id.in_(unknown)))).scalars()
        # Through each team of the caller the use case is shared with: what the share's role allows the
        # team on this use case, capped by the caller's role in that team (an "admin" share role caps nothing).
        granted: dict[uuid.UUID, set[str]] = {use_case_id: set() for use_case_id in unknown}
        for share in shares:
            member = self.team_permissions.get(share.team_id)
            if member is None:
                continue
            shared = set(share.role.permissions)
            granted[share.use_case_id] |= set(member) if ADMIN in shared else set(member) & shared
        keep = not fresh and changes.generation(GRANT_TABLES) == generation
        for use_case_id, permissions in granted.items():
            out[use_case_id] = result = frozenset(permissions)
            if keep:
                self._grants[use_case_id] = (generation, result)
        return out

    async def require_job(self, session: AsyncSession, permission: str, job: Any, what: str) -> None:
        """:meth:`require` on a job's use case; the key of a job of no use case (a model conversion) reaches
        that job only, not the registry's other jobs."""
        if self.job_id is not None and job.use_case_id is None and job.id != self.job_id:
            raise NotFound(f"{what} not found")
        await self.require(session, permission, job.use_case_id, what)

    async def can(self, session: AsyncSession, permission: str, use_case_id: uuid.UUID) -> bool:
        return allows(await self.use_case_permissions(session, use_case_id), permission)

    async def require(self, session: AsyncSession, permission: str, use_case_id: uuid.UUID | None, what: str) -> None:
        """Raise unless allowed. Without read access the use case is reported as not found, so its
        existence does not leak to other teams. A resource of no use case (a model-conversion job) belongs to
        the model registry: every permission on it is the global REGISTRY_PERMISSION."""
        if use_case_id is None:
            if self.job_id is None and self.has_global(REGISTRY_PERMISSION):
                return
            # A model conversion's own key (its job is of no use case either); require_job keeps it to that job.
            if self.job_id is not None and self.job_use_case_id is None and self._creator_holds(REGISTRY_PERMISSION):
                return
            raise NotFound(f"{what} not found")
        granted = await self.use_case_permissions(session, use_case_id)
        if allows(granted, permission):
            return
        if "use_case:read" not in granted:
            raise NotFound(f"{what} not found")
        raise PermissionDenied(f"permission '{permission}' is required on {what}")


async def authenticate(session: AsyncSession, token: str | None) -> Principal:
    if not token:
        raise Unauthenticated("missing API key: send 'Authorization: Bearer <key>'")
    key = (
        await session.execute(select(ApiKey).where(ApiKey.key_hash == hash_api_key(token), ApiKey.revoked_at.is_(None)))
    ).scalar_one_or_none()
    if key is None:
        raise Unauthenticated("invalid API key")
    if key.expires_at is not None and as_utc(key.expires_at) <= utcnow():
        raise Unauthenticated("this API key has expired")
    principal = await principal_for_user(session, key.user, job_id=key.job_id)
    principal.api_key_id = key.id
    principal.key_expires_at = key.expires_at
    principal.allowed_models = frozenset(key.allowed_models) if key.allowed_models is not None else None
    principal.allowed_use_cases = (
        frozenset(uuid.UUID(str(u)) for u in key.use_case_ids) if key.use_case_ids is not None else None
    )
    if key.job_id is not None:
        from adaptive_engine.server.db.models import Job

        job = await session.get(Job, key.job_id)
        principal.job_use_case_id = job.use_case_id if job is not None else None
    return principal


async def principal_for_user(session: AsyncSession, user: User, job_id: uuid.UUID | None = None) -> Principal:
    members = (await session.execute(select(TeamMember).where(TeamMember.user_id == user.id))).scalars()
    return Principal(
        user_id=user.id,
        email=user.email,
        team_permissions={m.team_id: frozenset(m.role.permissions) for m in members},
        job_id=job_id,
    )
