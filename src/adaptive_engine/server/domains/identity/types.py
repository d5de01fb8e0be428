"""GraphQL types of users, teams and roles."""

from __future__ import annotations

import uuid

import strawberry

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.base import epoch


@strawberry.type(name="Team")
class TeamType:
    row: strawberry.Private[orm.Team]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def key(self) -> str:
        return self.row.key

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0


@strawberry.type(name="Role")
class RoleType:
    row: strawberry.Private[orm.Role]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def key(self) -> str:
        return self.row.key

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0

    @strawberry.field
    def permissions(self) -> list[str]:
        return list(self.row.permissions)


@strawberry.type(name="TeamWithRole")
class TeamWithRoleType:
    team: TeamType
    role: RoleType


@strawberry.type(name="User")
class UserType:
    row: strawberry.Private[orm.User]
    memberships: strawberry.Private[list[orm.TeamMember]]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def email(self) -> str:
        return self.row.email

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0

    @strawberry.field
    def teams(self) -> list[TeamWithRoleType]:
        return [TeamWithRoleType(team=TeamType(row=m.team), role=RoleType(row=m.role)) for m in self.memberships]


@strawberry.type(name="TeamMember")
class TeamMemberType:
    user: UserType
    team: TeamType
    role: RoleType


@strawberry.type(name="ApiKey")
class ApiKeyType:
    row: strawberry.Private[orm.ApiKey]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field(description="First characters of the key, to tell keys apart")
    def prefix(self) -> str:
        return self.row.prefix

    @strawberry.field
    def user_email(self) -> str:
        return self.row.user.email

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0

    @strawberry.field
    def revoked_at(self) -> int | None:
        return epoch(self.row.revoked_at)


@strawberry.type(name="CreatedApiKey")
class CreatedApiKeyType:
    key: str = strawberry.field(description="The key itself: shown once, never stored")
    api_key: ApiKeyType
