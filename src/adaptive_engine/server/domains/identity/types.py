"""GraphQL types of users, teams and roles, filled by converters from the identity domain's records."""

from __future__ import annotations

import uuid

import strawberry

from adaptive_engine.server.domains.identity import service
from adaptive_engine.server.domains.identity.records import ApiKeyRecord, RoleRecord, TeamRecord, UserRecord
from adaptive_engine.server.graphql.loaders import lookup
from adaptive_engine.server.timestamps import epoch


@strawberry.type(name="Team")
class TeamType:
    id: uuid.UUID
    key: str
    name: str
    created_at: int


def to_gql_team(team: TeamRecord) -> TeamType:
    return TeamType(id=team.id, key=team.key, name=team.name, created_at=epoch(team.created_at) or 0)


@strawberry.type(name="Role")
class RoleType:
    id: uuid.UUID
    key: str
    name: str
    created_at: int
    permissions: list[str]


def to_gql_role(role: RoleRecord) -> RoleType:
    return RoleType(
        id=role.id,
        key=role.key,
        name=role.name,
        created_at=epoch(role.created_at) or 0,
        permissions=list(role.permissions),
    )


@strawberry.type(name="TeamWithRole")
class TeamWithRoleType:
    team: TeamType
    role: RoleType


# The team memberships of each user, for all the users of a list at once.
MEMBERSHIPS = lookup(service.memberships_of_users, missing=list)


@strawberry.type(name="User")
class UserType:
    id: uuid.UUID
    email: str
    name: str
    created_at: int
    record: strawberry.Private[UserRecord]

    @strawberry.field
    async def teams(self, info: strawberry.Info) -> list[TeamWithRoleType]:
        members = self.record.memberships
        if members is None:
            members = await info.context.loaders.load(MEMBERSHIPS, self.id)
        return [TeamWithRoleType(team=to_gql_team(m.team), role=to_gql_role(m.role)) for m in members]


def to_gql_user(user: UserRecord) -> UserType:
    return UserType(id=user.id, email=user.email, name=user.name, created_at=epoch(user.created_at) or 0, record=user)


@strawberry.type(name="TeamMember")
class TeamMemberType:
    user: UserType
    team: TeamType
    role: RoleType


@strawberry.type(name="ApiKey")
class ApiKeyType:
    id: uuid.UUID
    name: str
    prefix: str = strawberry.field(description="First characters of the key, to tell keys apart")
    user_email: str
    created_at: int
    revoked_at: int | None
    expires_at: int | None = strawberry.field(description="Refused on the data plane from then on (null: never)")
    allowed_models: list[str] | None = strawberry.field(description="Model keys it may call (null: any)")
    use_cases: list[uuid.UUID] | None = strawberry.field(description="Ids of the use cases it may call (null: any)")


def to_gql_api_key(key: ApiKeyRecord) -> ApiKeyType:
    return ApiKeyType(
        id=key.id,
        name=key.name,
        prefix=key.prefix,
        user_email=key.user_email,
        created_at=epoch(key.created_at) or 0,
        revoked_at=epoch(key.revoked_at),
        expires_at=epoch(key.expires_at),
        allowed_models=None if key.allowed_models is None else list(key.allowed_models),
        use_cases=None if key.use_case_ids is None else list(key.use_case_ids),
    )


@strawberry.type(name="CreatedApiKey")
class CreatedApiKeyType:
    key: str = strawberry.field(description="The key itself: shown once, never stored")
    api_key: ApiKeyType
