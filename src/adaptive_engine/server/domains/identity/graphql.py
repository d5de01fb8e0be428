"""GraphQL of the identity domain: the caller, users, teams, roles, permissions and API keys."""

from __future__ import annotations

import uuid

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import authenticated, requires
from adaptive_engine.server.domains.identity import service
from adaptive_engine.server.domains.identity.types import (
    ApiKeyType,
    CreatedApiKeyType,
    RoleType,
    TeamMemberType,
    TeamType,
    UserType,
    to_gql_api_key,
    to_gql_role,
    to_gql_team,
    to_gql_user,
)
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.scalars import IdOrKey, Timestamp


@strawberry.input(name="UserCreateTeamWithRole")
class UserCreateTeamWithRole:
    team: str
    role: str


@strawberry.input(name="UserCreate")
class UserCreate:
    email: str
    name: str
    teams: list[UserCreateTeamWithRole]


@strawberry.input(name="TeamMemberSet")
class TeamMemberSet:
    user: str
    team: str
    role: str


@strawberry.input(name="TeamMemberRemove")
class TeamMemberRemove:
    user: str
    team: str


@strawberry.input(name="TeamCreate")
class TeamCreate:
    name: str
    key: str | None = None


@strawberry.input(name="RoleCreate")
class RoleCreate:
    name: str
    permissions: list[str]
    key: str | None = None


@strawberry.input(name="ApiKeyCreate")
class ApiKeyCreate:
    name: str = ""
    user: str | None = strawberry.field(default=None, description="Email or id; default: the caller")
    expires_at: Timestamp | None = strawberry.field(default=None, description="Refused on the data plane from then on")
    allowed_models: list[str] | None = strawberry.field(default=None, description="Model keys it may call (null: any)")
    use_cases: list[str] | None = strawberry.field(
        default=None, description="Use cases (ids or keys) it may call (null: any)"
    )


@strawberry.type
class IdentityQuery:
    @strawberry.field(extensions=[authenticated()])
    async def me(self, info: Info[Context, None]) -> UserType | None:
        user = await service.current_user(info.context.session, info.context.principal)
        return to_gql_user(user) if user else None

    @strawberry.field(extensions=[requires("user:manage")])
    async def users(self, info: Info[Context, None]) -> list[UserType]:
        return [to_gql_user(u) for u in await service.list_users(info.context.session)]

    @strawberry.field(extensions=[authenticated()])
    async def teams(self, info: Info[Context, None]) -> list[TeamType]:
        return [to_gql_team(t) for t in await service.list_teams(info.context.session, info.context.principal)]

    @strawberry.field(extensions=[authenticated()])
    async def roles(self, info: Info[Context, None]) -> list[RoleType]:
        return [to_gql_role(r) for r in await service.list_roles(info.context.session)]

    @strawberry.field(extensions=[authenticated()], description="The permission catalogue")
    def permissions(self) -> list[str]:
        return service.permission_catalogue()

    @strawberry.field(
        extensions=[authenticated()],
        description="API keys of a user (default: the caller; others need user:manage). Keys are never shown.",
    )
    async def api_keys(self, info: Info[Context, None], user: str | None = None) -> list[ApiKeyType]:
        ctx = info.context
        return [to_gql_api_key(k) for k in await service.list_api_keys(ctx.session, ctx.principal, user)]


@strawberry.type
class IdentityMutation:
    @strawberry.mutation(extensions=[requires("user:manage")])
    async def create_user(self, info: Info[Context, None], input: UserCreate) -> UserType:
        user = await service.create_user(
            info.context.session, email=input.email, name=input.name, teams=[(t.team, t.role) for t in input.teams]
        )
        return to_gql_user(user)

    @strawberry.mutation(extensions=[requires("user:manage")])
    async def delete_user(self, info: Info[Context, None], user: IdOrKey) -> UserType:
        return to_gql_user(await service.delete_user(info.context.session, user))

    @strawberry.mutation(name="setTeamMember", extensions=[requires("team:manage")])
    async def set_team_member(self, info: Info[Context, None], input: TeamMemberSet) -> TeamMemberType:
        user, team, role = await service.set_team_member(
            info.context.session, user=input.user, team=input.team, role=input.role
        )
        return TeamMemberType(user=to_gql_user(user), team=to_gql_team(team), role=to_gql_role(role))

    @strawberry.mutation(extensions=[requires("team:manage")])
    async def remove_team_member(self, info: Info[Context, None], input: TeamMemberRemove) -> UserType:
        user = await service.remove_team_member(info.context.session, user=input.user, team=input.team)
        return to_gql_user(user)

    @strawberry.mutation(extensions=[requires("team:manage")])
    async def create_team(self, info: Info[Context, None], input: TeamCreate) -> TeamType:
        return to_gql_team(await service.create_team(info.context.session, key=input.key, name=input.name))

    @strawberry.mutation(extensions=[requires("role:manage")])
    async def create_role(self, info: Info[Context, None], input: RoleCreate) -> RoleType:
        role = await service.create_role(
            info.context.session, key=input.key, name=input.name, permissions=list(input.permissions)
        )
        return to_gql_role(role)

    @strawberry.mutation(extensions=[authenticated()], description="Mint an API key (shown once)")
    async def create_api_key(self, info: Info[Context, None], input: ApiKeyCreate) -> CreatedApiKeyType:
        ctx = info.context
        key, plain = await service.issue_api_key(
            ctx.session,
            ctx.principal,
            user=input.user,
            name=input.name,
            expires_at=input.expires_at,
            allowed_models=input.allowed_models,
            use_cases=input.use_cases,
        )
        return CreatedApiKeyType(key=plain, api_key=to_gql_api_key(key))

    @strawberry.mutation(extensions=[authenticated()], description="Revoke an API key: it stops working at once")
    async def revoke_api_key(self, info: Info[Context, None], id: uuid.UUID) -> ApiKeyType:
        ctx = info.context
        return to_gql_api_key(await service.revoke_api_key(ctx.session, ctx.principal, str(id)))
