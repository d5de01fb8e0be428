"""GraphQL types of feedback keys (the wire protocol calls them metrics)."""

from __future__ import annotations

import enum
import uuid

import strawberry

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.base import epoch


@strawberry.enum(name="MetricKind")
class MetricKind(enum.Enum):
    SCALAR = "SCALAR"
    BOOL = "BOOL"


@strawberry.enum(name="MetricScoringType")
class MetricScoringType(enum.Enum):
    HIGHER_IS_BETTER = "HIGHER_IS_BETTER"
    LOWER_IS_BETTER = "LOWER_IS_BETTER"


@strawberry.type(name="MetricWithContext")
class MetricWithContextType:
    """A feedback key as seen from one use case."""

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


@strawberry.type(name="Metric")
class MetricType:
    """A feedback key on its own (the wire name is Metric). The feedback domain owns how its
    ``has*Feedbacks`` flags are computed; until its tables exist they are False."""

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

    @strawberry.field
    def has_direct_feedbacks(self) -> bool:
        return False

    @strawberry.field
    def has_comparison_feedbacks(self) -> bool:
        return False
