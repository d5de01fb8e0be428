"""GraphQL of remote environments: the reward servers REMOTE graders call."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import authenticated, requires
from adaptive_engine.server.domains.graders import remote_envs
from adaptive_engine.server.domains.graders.records import RemoteEnvRecord
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.scalars import JSON, IdOrKey
from adaptive_engine.server.timestamps import epoch


@strawberry.enum(name="RemoteEnvStatus")
class RemoteEnvStatus(enum.Enum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"


@strawberry.type(name="RemoteEnv")
class RemoteEnvType:
    id: uuid.UUID
    key: str
    name: str
    url: str
    description: str
    created_at: int
    version: str
    status: RemoteEnvStatus
    metadata_schema: JSON | None


def to_gql_remote_env(env: RemoteEnvRecord) -> RemoteEnvType:
    return RemoteEnvType(
        id=env.id,
        key=env.key,
        name=env.name,
        url=env.url,
        description=env.description,
        created_at=epoch(env.created_at) or 0,
        version=env.version,
        status=RemoteEnvStatus(env.status),
        metadata_schema=JSON(env.metadata_schema),
    )


@strawberry.type(name="RemoteEnvTestOnline")
class RemoteEnvTestOnline:
    name: str
    version: str
    description: str


@strawberry.type(name="RemoteEnvTestOffline")
class RemoteEnvTestOffline:
    error: str


RemoteEnvTest = Annotated[RemoteEnvTestOnline | RemoteEnvTestOffline, strawberry.union("RemoteEnvTest")]


@strawberry.input(name="RemoteEnvCreate")
class RemoteEnvCreate:
    url: str
    key: str | None = None
    name: str | None = None
    description: str | None = None


@strawberry.type
class RemoteEnvQuery:
    @strawberry.field(extensions=[authenticated()])
    async def remote_envs(self, info: Info[Context, None]) -> list[RemoteEnvType]:
        ctx = info.context
        return [to_gql_remote_env(e) for e in await remote_envs.list_remote_envs(ctx.session, ctx.principal)]


@strawberry.type
class RemoteEnvMutation:
    @strawberry.mutation(extensions=[requires("grader:write")])
    async def test_remote_env(self, info: Info[Context, None], input: RemoteEnvCreate) -> RemoteEnvTest:
        result = await remote_envs.test_endpoint(info.context.principal, info.context.platform.outbound, input.url)
        if result.online and result.info is not None:
            return RemoteEnvTestOnline(
                name=result.info.name, version=result.info.version, description=result.info.description
            )
        return RemoteEnvTestOffline(error=result.error or "offline")

    @strawberry.mutation(extensions=[requires("grader:write")])
    async def add_remote_env(self, info: Info[Context, None], input: RemoteEnvCreate) -> RemoteEnvType:
        ctx = info.context
        env = await remote_envs.add_remote_env(
            ctx.session,
            ctx.principal,
            ctx.platform.outbound,
            url=input.url,
            key=input.key,
            name=input.name,
            description=input.description,
        )
        return to_gql_remote_env(env)

    @strawberry.mutation(extensions=[requires("grader:write")])
    async def remove_remote_env(self, info: Info[Context, None], id_or_key: IdOrKey) -> str:
        ctx = info.context
        env = await remote_envs.remove_remote_env(ctx.session, ctx.principal, id_or_key)
        return str(env.id)
