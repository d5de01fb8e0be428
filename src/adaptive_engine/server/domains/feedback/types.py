"""GraphQL types of feedback keys (the wire protocol calls them metrics)."""

from __future__ import annotations

import enum
import uuid

import strawberry

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.base import epoch
from adaptive_engine.server.domains.feedback import keys


@strawberry.enum(name="MetricKind")
class MetricKind(enum.Enum):
    SCALAR = "SCALAR"
    BOOL = "BOOL"


@strawberry.enum(name="MetricScoringType")
class MetricScoringType(enum.Enum):
    HIGHER_IS_BETTER = "HIGHER_IS_BETTER"
    LOWER_IS_BETTER = "LOWER_IS_BETTER"


@strawberry.type
class MetricFields:
    """The fields every view of a feedback key shares (Metric and MetricWithContext)."""

    row: strawberry.Private[orm.Metric]

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
    def kind(self) -> MetricKind:
        return MetricKind(self.row.kind)

    @strawberry.field
    def description(self) -> str:
        return self.row.description

    @strawberry.field
    def scoring_type(self) -> MetricScoringType:
        return MetricScoringType(self.row.scoring_type)

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0


@strawberry.type(name="MetricWithContext")
class MetricWithContextType(MetricFields):
    """A feedback key as seen from one use case."""


@strawberry.type(name="MetricUseCase")
class MetricUseCaseType:
    """A use case a feedback key is linked to (the fields the key's listing shows)."""

    row: strawberry.Private[orm.UseCase]

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
    def description(self) -> str:
        return self.row.description


@strawberry.type(name="Metric")
class MetricType(MetricFields):
    """A feedback key."""

    # (has direct feedbacks, has comparison feedbacks) when the caller computed them for a whole page.
    flags: strawberry.Private[tuple[bool, bool] | None] = None

    @strawberry.field
    async def use_cases(self, info: strawberry.Info) -> list[MetricUseCaseType]:
        ctx = info.context
        rows = await keys.use_cases_of(ctx.session, self.row.id)
        visible = []
        for use_case in rows:
            if await ctx.principal.can(ctx.session, "use_case:read", use_case.id):
                visible.append(MetricUseCaseType(row=use_case))
        return visible

    @strawberry.field
    async def has_direct_feedbacks(self, info: strawberry.Info) -> bool:
        if self.flags is not None:
            return self.flags[0]
        return await keys.has_direct_feedbacks(info.context.session, self.row.id)

    @strawberry.field
    async def has_comparison_feedbacks(self, info: strawberry.Info) -> bool:
        if self.flags is not None:
            return self.flags[1]
        return await keys.has_comparison_feedbacks(info.context.session, self.row.id)
