"""GraphQL input types and enums shared by several domains (one definition per wire name).

The official client declares these names in its variables (``TimeRange``, ``CursorPageInput``,
``OrderPair`` ...): a domain that needs one imports it from here instead of defining it again.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import strawberry

from adaptive_engine.server.graphql.scalars import Timestamp


@strawberry.enum(name="SortDirection")
class SortDirection(enum.Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.input(name="OrderPair")
class OrderPair:
    field: str
    order: SortDirection


@strawberry.input(name="CursorPageInput")
class CursorPageInput:
    first: int | None = None
    after: str | None = None
    before: str | None = None
    last: int | None = None
    offset: int | None = None


@strawberry.type(name="PageInfo")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @staticmethod
    def of(page: Any) -> PageInfo:
        """The page info of a ``db.pagination.Page``."""
        return PageInfo(
            has_next_page=page.has_next_page,
            has_previous_page=page.has_previous_page,
            start_cursor=page.start_cursor,
            end_cursor=page.end_cursor,
        )


@strawberry.input(name="TimeRange", description="From and to: epoch seconds, epoch milliseconds or ISO-8601")
class TimeRange:
    from_: Timestamp = strawberry.field(name="from")
    to: Timestamp

    @property
    def bounds(self) -> tuple[datetime, datetime]:
        return self.from_, self.to


@strawberry.input(name="LabelFilter")
class LabelFilter:
    key: str
    value: list[str] | None = None


@strawberry.input(name="StringCondition")
class StringCondition:
    eq: str | None = None
    in_: list[str] | None = strawberry.field(name="in", default=None)
    neq: str | None = None


@strawberry.input(name="IdOrKeyCondition")
class IdOrKeyCondition:
    eq: str | None = None
    in_: list[str] | None = strawberry.field(name="in", default=None)
    neq: str | None = None


@strawberry.input(name="TextCondition")
class TextCondition:
    eq: str | None = None
    contains: str | None = None


@strawberry.input(name="FloatNumericCondition")
class FloatNumericCondition:
    eq: float | None = None
    neq: float | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


@strawberry.input(name="IntegerNumericCondition")
class IntegerNumericCondition:
    eq: int | None = None
    neq: int | None = None
    gt: int | None = None
    gte: int | None = None
    lt: int | None = None
    lte: int | None = None
