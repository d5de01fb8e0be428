"""GraphQL of the identity domain: the caller (``me``). Users, teams and roles management extend this."""

from __future__ import annotations

import strawberry
from sqlalchemy import select
from strawberry.types import Info

from adaptive_engine.server.db.models import TeamMember, User
from adaptive_engine.server.domains.identity.types import UserType
from adaptive_engine.server.graphql.context import Context


async def user_type(info: Info[Context, None], user: User) -> UserType:
    members = (await info.context.session.execute(select(TeamMember).where(TeamMember.user_id == user.id))).scalars()
    return UserType(row=user, memberships=list(members))


@strawberry.type
class IdentityQuery:
    @strawberry.field
    async def me(self, info: Info[Context, None]) -> UserType | None:
        user = await info.context.session.get(User, info.context.principal.user_id)
        return await user_type(info, user) if user else None
