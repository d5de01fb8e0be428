"""GraphQL of use cases."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import authenticated, requires
from adaptive_engine.server.auth.permissions import ADMIN, CATALOGUE
from adaptive_engine.server.domains.feedback.types import MetricWithContextType, to_gql_metric_with_context
from adaptive_engine.server.domains.feedback_keys.records import MetricRecord
from adaptive_engine.server.domains.identity.records import RoleRecord, TeamRecord
from adaptive_engine.server.domains.identity.types import RoleType, TeamType, to_gql_role, to_gql_team
from adaptive_engine.server.domains.interactions.activity_types import (
    ActivityTimeseriesInput,
    ActivityTimeseriesType,
    ActivityType,
    resolve_activity,
    resolve_timeseries,
)
from adaptive_engine.server.domains.models.service import services_of_use_cases
from adaptive_engine.server.domains.models.types import ModelServiceType, to_gql_model_service
from adaptive_engine.server.domains.use_cases import service
from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.graphql.common import CursorPageInput, PageInfo, TimeRange
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.loaders import USE_CASE_PERMISSIONS, lookup
from adaptive_engine.server.graphql.scalars import IdOrKey
from adaptive_engine.server.timestamps import epoch

# What the fields of a use case list, loaded for all the use cases of a list at once.
METRICS = lookup(service.metrics_of, missing=list)
MODEL_SERVICES = lookup(services_of_use_cases, missing=list)
SHARES = lookup(service.shares_of, missing=list)


@strawberry.type(name="UseCaseShare")
class UseCaseShareType:
    team: TeamType
    role: RoleType
    is_owner: bool


@strawberry.type(name="Emoji")
class EmojiType:
    native: str


@strawberry.type(name="UseCaseMetadata")
class UseCaseMetadataType:
    emoji: EmojiType | None


@strawberry.type(name="Settings")
class UseCaseSettingsType:
    default_metric: MetricWithContextType | None


@strawberry.type(name="UseCase")
class UseCaseType:
    id: uuid.UUID
    key: str
    name: str
    description: str
    created_at: int
    is_archived: bool = strawberry.field(description="Archived use cases keep their data but take no new traffic")
    gradient_color: str | None
    metadata: UseCaseMetadataType
    default_metric_id: strawberry.Private[str | None]

    @strawberry.field
    async def settings(self, info: Info[Context, None]) -> UseCaseSettingsType:
        metric_id = self.default_metric_id
        metrics = await info.context.loaders.load(METRICS, self.id) if metric_id else []
        found = next((m for m in metrics if str(m.id) == metric_id), None)
        return UseCaseSettingsType(
            default_metric=to_gql_metric_with_context(MetricRecord.of(found), self.id) if found else None
        )

    @strawberry.field
    async def metrics(self, info: Info[Context, None]) -> list[MetricWithContextType]:
        return [
            to_gql_metric_with_context(MetricRecord.of(m), self.id)
            for m in await info.context.loaders.load(METRICS, self.id)
        ]

    @strawberry.field
    async def model_services(self, info: Info[Context, None]) -> list[ModelServiceType]:
        return [to_gql_model_service(s) for s in await info.context.loaders.load(MODEL_SERVICES, self.id)]

    @strawberry.field(description="The use case's traffic in a time window (default: the last 24 hours)")
    async def activity(self, info: Info[Context, None], timerange: TimeRange | None = None) -> ActivityType:
        return await resolve_activity(info.context.session, self._scope, timerange)

    @strawberry.field(
        description="Interactions, tokens, latency and failed calls per time bucket (UTC), per model with byModel"
    )
    async def activity_timeseries(
        self,
        info: Info[Context, None],
        input: ActivityTimeseriesInput,  # noqa: A002 - as MetricWithContext.timeseries
    ) -> list[ActivityTimeseriesType]:
        return await resolve_timeseries(info.context.session, self._scope, input)

    def _scope(self, column: Any) -> Any:
        return column == self.id

    @strawberry.field(description="The caller's permissions on this use case")
    async def permissions(self, info: Info[Context, None]) -> list[str]:
        granted = await info.context.loaders.load(USE_CASE_PERMISSIONS, self.id)
        return sorted(CATALOGUE) if ADMIN in granted else sorted(granted)

    @strawberry.field
    async def shares(self, info: Info[Context, None]) -> list[UseCaseShareType]:
        shares = await info.context.loaders.load(SHARES, self.id)
        return [
            UseCaseShareType(
                team=to_gql_team(TeamRecord.of(s.team)), role=to_gql_role(RoleRecord.of(s.role)), is_owner=s.is_owner
            )
            for s in shares
        ]


def to_gql_use_case(use_case: service.UseCaseRecord) -> UseCaseType:
    return UseCaseType(
        id=use_case.id,
        key=use_case.key,
        name=use_case.name,
        description=use_case.description,
        created_at=epoch(use_case.created_at) or 0,
        is_archived=use_case.is_archived,
        gradient_color=use_case.gradient_color,
        metadata=UseCaseMetadataType(emoji=EmojiType(native=use_case.emoji) if use_case.emoji else None),
        default_metric_id=use_case.default_metric_id,
    )


@strawberry.input(name="UseCaseSettingsInput")
class UseCaseSettingsInput:
    default_metric: str | None = None


@strawberry.input(name="EmojiInput")
class EmojiInput:
    native: str


@strawberry.input(name="UseCaseMetadataInput")
class UseCaseMetadataInput:
    emoji: EmojiInput | None = None


@strawberry.input(name="UseCaseCreate")
class UseCaseCreate:
    name: str
    team: str | None = None
    key: str | None = None
    description: str | None = None
    gradient_color: str | None = None
    metadata: UseCaseMetadataInput | None = None
    settings: UseCaseSettingsInput | None = None


@strawberry.input(name="UseCaseFilter")
class UseCaseFilter:
    is_archived: bool | None = None


@strawberry.input(name="UseCaseUpdate")
class UseCaseUpdate:
    name: str | None = None
    description: str | None = None
    metadata: UseCaseMetadataInput | None = None
    settings: UseCaseSettingsInput | None = None
    is_archived: bool | None = None
    gradient_color: str | None = None


def _appearance(metadata: UseCaseMetadataInput | None, gradient_color: str | None) -> service.Appearance:
    emoji = metadata.emoji.native if metadata and metadata.emoji else None
    return service.Appearance(emoji=emoji, gradient_color=gradient_color)


@strawberry.input(name="UseCaseShareInput")
class UseCaseShareInput:
    team: str
    role: str
    is_owner: bool


@strawberry.input(name="UseCaseShares")
class UseCaseShares:
    shares: list[UseCaseShareInput]


@strawberry.type(name="UseCaseConnection")
class UseCaseConnection:
    total_count: int
    page_info: PageInfo
    nodes: list[UseCaseType]


@strawberry.type
class UseCaseQuery:
    @strawberry.field(extensions=[requires("use_case:read", use_case="id_or_key")])
    async def use_case(self, info: Info[Context, None], id_or_key: IdOrKey) -> UseCaseType | None:
        ctx = info.context
        return to_gql_use_case(await service.use_case_record(ctx.session, ctx.principal, id_or_key))

    @strawberry.field(extensions=[authenticated()])
    async def use_cases(self, info: Info[Context, None], filter: UseCaseFilter | None = None) -> list[UseCaseType]:  # noqa: A002
        ctx = info.context
        archived = filter.is_archived if filter else None
        return [
            to_gql_use_case(u) for u in await service.list_use_cases(ctx.session, ctx.principal, is_archived=archived)
        ]

    @strawberry.field(
        extensions=[authenticated()],
        description="The use cases you can see, a page at a time (oldest first, cursors); search "
        "matches key or name, any case. useCases answers them all at once.",
    )
    async def use_cases_page(
        self, info: Info[Context, None], page: CursorPageInput, search: str | None = None
    ) -> UseCaseConnection:
        if page.offset:
            raise InvalidInput("offset paging is not supported for use cases: use cursors (after / before)")
        ctx = info.context
        result, total = await service.page_use_cases(
            ctx.session,
            ctx.principal,
            first=page.first,
            last=page.last,
            after=page.after,
            before=page.before,
            search=search,
        )
        return UseCaseConnection(
            total_count=total,
            page_info=PageInfo.of(result),
            nodes=[to_gql_use_case(u) for u in result.items],
        )


@strawberry.type
class UseCaseMutation:
    @strawberry.mutation(extensions=[requires("use_case:create")])
    async def create_use_case(self, info: Info[Context, None], input: UseCaseCreate) -> UseCaseType:
        ctx = info.context
        use_case = await service.create_use_case(
            ctx.session,
            ctx.principal,
            key=input.key,
            name=input.name,
            description=input.description,
            team=input.team,
            appearance=_appearance(input.metadata, input.gradient_color),
            default_metric=input.settings.default_metric if input.settings else None,
        )
        return to_gql_use_case(use_case)

    @strawberry.mutation(
        extensions=[requires("use_case:write", use_case="id_or_key")],
        description="Rename, describe, archive or unarchive a use case, set its look and default metric",
    )
    async def update_use_case(self, info: Info[Context, None], id_or_key: IdOrKey, input: UseCaseUpdate) -> UseCaseType:
        ctx = info.context
        use_case = await service.update_use_case(
            ctx.session,
            ctx.principal,
            id_or_key,
            name=input.name,
            description=input.description,
            appearance=_appearance(input.metadata, input.gradient_color),
            default_metric=input.settings.default_metric if input.settings else None,
            is_archived=input.is_archived,
        )
        return to_gql_use_case(use_case)

    @strawberry.mutation(
        extensions=[requires("use_case:share", use_case="id_or_key")],
        description="Replace the use case's shares with the given list",
    )
    async def share_use_case(self, info: Info[Context, None], id_or_key: IdOrKey, input: UseCaseShares) -> UseCaseType:
        ctx = info.context
        shares = [(s.team, s.role, s.is_owner) for s in input.shares]
        return to_gql_use_case(await service.share_use_case(ctx.session, ctx.principal, id_or_key, shares))
