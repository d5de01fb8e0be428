"""What the identity domain hands its readers: plain values built from the rows in one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from adaptive_engine.server.db.models import ApiKey, Role, Team, TeamMember, User


@dataclass(frozen=True, slots=True)
class TeamRecord:
    id: uuid.UUID
    key: str
    name: str
    created_at: datetime

    @classmethod
    def of(cls, team: Team) -> TeamRecord:
        return cls(id=team.id, key=team.key, name=team.name, created_at=team.created_at)


@dataclass(frozen=True, slots=True)
class RoleRecord:
    id: uuid.UUID
    key: str
    name: str
    permissions: tuple[str, ...]
    created_at: datetime

    @classmethod
    def of(cls, role: Role) -> RoleRecord:
        return cls(
            id=role.id, key=role.key, name=role.name, permissions=tuple(role.permissions), created_at=role.created_at
        )


@dataclass(frozen=True, slots=True)
class MembershipRecord:
    """A user's place in a team."""

    user_id: uuid.UUID
    team: TeamRecord
    role: RoleRecord

    @classmethod
    def of(cls, member: TeamMember) -> MembershipRecord:
        return cls(user_id=member.user_id, team=TeamRecord.of(member.team), role=RoleRecord.of(member.role))


@dataclass(frozen=True, slots=True)
class UserRecord:
    id: uuid.UUID
    email: str
    name: str
    created_at: datetime
    # Given when they cannot be read any more (a deleted user's); else read when asked for.
    memberships: tuple[MembershipRecord, ...] | None = None

    @classmethod
    def of(cls, user: User, memberships: list[TeamMember] | None = None) -> UserRecord:
        return cls(
            id=user.id,
            email=user.email,
            name=user.name,
            created_at=user.created_at,
            memberships=None if memberships is None else tuple(MembershipRecord.of(m) for m in memberships),
        )


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: uuid.UUID
    name: str
    prefix: str
    user_email: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None
    allowed_models: tuple[str, ...] | None
    use_case_ids: tuple[uuid.UUID, ...] | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyRecord:
        return cls(
            id=key.id,
            name=key.name,
            prefix=key.prefix,
            user_email=key.user.email,
            created_at=key.created_at,
            revoked_at=key.revoked_at,
            expires_at=key.expires_at,
            allowed_models=None if key.allowed_models is None else tuple(key.allowed_models),
            use_case_ids=None if key.use_case_ids is None else tuple(uuid.UUID(str(u)) for u in key.use_case_ids),
        )
