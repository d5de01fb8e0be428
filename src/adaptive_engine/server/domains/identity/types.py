"""GraphQL types of users, teams and roles."""

from __future__ import annotations

import uuid

import strawberry
from sqlalchemy import select

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.graphql.loaders import children
from adaptive_engine.server.timestamps import epoch


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


# The team memberships of each user, for all the users of a list at once.
MEMBERSHIPS = children(
    lambda ids: (
        select(orm.TeamMember.user_id, orm.TeamMember)
        .where(orm.TeamMember.user_id.in_(ids))
        .order_by(orm.TeamMember.created_at)
        .execution_options(populate_existing=True)
    )
)


@strawberry.type(name="User")
class UserType:
    row: strawberry.Private[orm.User]
    # Given when they cannot be read any more (a deleted user's); else loaded when asked for.
    memberships: strawberry.Private[list[orm.TeamMember] | None] = None

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
    async def teams(self, info: strawberry.Info) -> list[TeamWithRoleType]:
        members = self.memberships
        if members is None:
            members = await info.context.loaders.load(MEMBERSHIPS, self.row.id)
        return [TeamWithRoleType(team=TeamType(row=m.team), role=RoleType(row=m.role)) for m in members]


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

    @strawberry.field(description="Refused on the data plane from then on (null: never)")
    def expires_at(self) -> int | None:
        return epoch(self.row.expires_at)

    @strawberry.field(description="Model keys it may call (null: any)")
    def allowed_models(self) -> list[str] | None:
        return self.row.allowed_models

    @strawberry.field(description="Ids of the use cases it may call (null: any)")
    def use_cases(self) -> list[uuid.UUID] | None:
        return [uuid.UUID(str(u)) for u in self.row.use_case_ids] if self.row.use_case_ids is not None else None


@strawberry.type(name="CreatedApiKey")
class CreatedApiKeyType:
    key: str = strawberry.field(description="The key itself: shown once, never stored")
    api_key: ApiKeyType
