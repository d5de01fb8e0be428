"""GraphQL of interactions: completion(useCase, id), completions(...) and completionsGrouped(...)."""

from __future__ import annotations

import enum
import uuid

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from adaptive_engine.server.auth.guard import authenticated, requires
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.domains.feedback.types import MetricType
from adaptive_engine.server.domains.interactions import curation, service
from adaptive_engine.server.domains.models.types import ModelType
from adaptive_engine.server.domains.use_cases.graphql import UseCaseType
from adaptive_engine.server.graphql.common import (
    CursorPageInput,
    FloatNumericCondition,
    IdOrKeyCondition,
    LabelFilter,
    OrderPair,
    PageInfo,
    StringCondition,
    TextCondition,
    TimeRange,
)
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.scalars import IdOrKey
from adaptive_engine.server.timestamps import epoch


@strawberry.enum(name="CompletionSource")
class CompletionSource(enum.Enum):
    LIVE = "LIVE"
    OFFLINE = "OFFLINE"
    AUTOMATION = "AUTOMATION"
    DATASET = "DATASET"
    EVALUATION = "EVALUATION"


@strawberry.enum(name="CompletionGroupBy")
class CompletionGroupBy(enum.Enum):
    MODEL = "MODEL"
    PROMPT = "PROMPT"


# ----- inputs (names and fields as the official client sends them)


@strawberry.input(name="CompletionFeedbackFilterInput")
class CompletionFeedbackFilterInput:
    metric: str
    gt: float | None = None
    gte: float | None = None
    eq: float | None = None
    neq: float | None = None
    lt: float | None = None
    lte: float | None = None
    reasons: list[str] | None = None
    user: uuid.UUID | None = None


@strawberry.input(name="CompletionComparisonFilterInput")
class CompletionComparisonFilterInput:
    metric: str


@strawberry.input(name="LabelCondition")
class LabelCondition:
    key: str
    value: StringCondition | None = None


@strawberry.input(name="FeedbackCondition")
class FeedbackCondition:
    metric: str
    value: FloatNumericCondition | None = None
    reasons: list[str] | None = None
    user: uuid.UUID | None = None


@strawberry.input(name="CompletionFilterExpression", description="AND / OR / NOT of completion conditions")
class CompletionFilterExpression:
    and_: list[CompletionFilterExpression] | None = strawberry.field(name="and", default=None)
    or_: list[CompletionFilterExpression] | None = strawberry.field(name="or", default=None)
    not_: CompletionFilterExpression | None = strawberry.field(name="not", default=None)
    timerange: TimeRange | None = None
    model: IdOrKeyCondition | None = None
    label: LabelCondition | None = None
    feedbacks: FeedbackCondition | None = None
    source: CompletionSource | None = None
    prompt_hash: StringCondition | None = None
    session_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    completion_id: uuid.UUID | None = None
    completion: TextCondition | None = None
    prompt: TextCondition | None = None
    ab_campaign: uuid.UUID | None = strawberry.field(default=None, description="A/B campaign id")


@strawberry.input(name="ListCompletionsFilterInput")
class ListCompletionsFilterInput:
    use_case: IdOrKey
    models: list[str] | None = None
    timerange: TimeRange | None = None
    session_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    feedbacks: list[CompletionFeedbackFilterInput] | None = None
    comparisons: list[CompletionComparisonFilterInput] | None = None
    labels: list[LabelFilter] | None = None
    prompt_hash: str | None = None
    completion_id: uuid.UUID | None = None
    source: list[CompletionSource] | None = None
    completion: str | None = None
    prompt: str | None = None
    advanced_filter: CompletionFilterExpression | None = strawberry.field(
        default=None, description="When set, takes precedence over the simple fields (except useCase)"
    )
    ab_campaign: IdOrKey | None = strawberry.field(default=None, description="Only traffic of this A/B campaign")


@strawberry.input(name="CompletionLabelValue")
class CompletionLabelValue:
    key: str
    value: str


@strawberry.input(name="UpdateCompletion")
class UpdateCompletion:
    id: uuid.UUID
    remove_labels: list[CompletionLabelValue] | None = strawberry.field(
        default=None, description="Remove these key=value labels (each must be on the completion); atomic"
    )
    add_labels: list[CompletionLabelValue] | None = strawberry.field(
        default=None, description="Add these labels (a key's value is replaced); atomic"
    )
    set_labels: list[CompletionLabelValue] | None = strawberry.field(
        default=None, description="Replace every label with these (alone: not with addLabels / removeLabels)"
    )
    metadata: JSON | None = strawberry.field(
        default=None, description="A JSON object, e.g. for external reward servers"
    )


# ----- outputs


@strawberry.type(name="ChatMessage")
class ChatMessageType:
    role: str
    content: str
    tool_calls: JSON | None = strawberry.field(
        default=None, description="An assistant message's tool calls (OpenAI's shape)"
    )
    tool_call_id: str | None = strawberry.field(default=None, description="The call a tool message answers")


@strawberry.type(name="CompletionLabel")
class CompletionLabelType:
    key: str
    value: str


@strawberry.type(name="Usage")
class UsageType:
    completion_tokens: int
    prompt_tokens: int
    total_tokens: int


@strawberry.type(name="CompletionMetadata")
class CompletionMetadataType:
    parameters: JSON | None
    timings: JSON | None
    usage: UsageType | None
    system: JSON | None


def _metric(info: Info[Context, None], metric: orm.Metric) -> MetricType:
    flags = getattr(info.context, "_metric_flags", {}).get(metric.id)
    return MetricType(row=metric, flags=flags)


@strawberry.type(name="DirectFeedback")
class DirectFeedbackType:
    view: strawberry.Private[service.FeedbackView]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.view.row.id

    @strawberry.field
    def value(self) -> float:
        return self.view.row.value

    @strawberry.field
    def metric(self, info: Info[Context, None]) -> MetricType | None:
        return _metric(info, self.view.metric)

    @strawberry.field
    def reason(self) -> str | None:
        return self.view.row.reason

    @strawberry.field
    def details(self) -> str | None:
        return self.view.row.details

    @strawberry.field
    def user_id(self) -> str | None:
        return self.view.row.user_ref

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.view.row.created_at) or 0


@strawberry.type(name="ComparisonFeedback")
class ComparisonFeedbackType:
    view: strawberry.Private[service.ComparisonView]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.view.row.id

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.view.row.created_at) or 0

    @strawberry.field
    def usecase(self) -> UseCaseType | None:
        return UseCaseType(row=self.view.use_case)

    @strawberry.field
    def metric(self, info: Info[Context, None]) -> MetricType | None:
        return _metric(info, self.view.metric)

    @strawberry.field
    def prefered_completion(self) -> CompletionType | None:
        return CompletionType(view=self.view.preferred)

    @strawberry.field
    def other_completion(self) -> CompletionType | None:
        return CompletionType(view=self.view.other)

    @strawberry.field(description="'good' or 'bad' when both completions tied; null when the preferred one won")
    def tied(self) -> str | None:
        return self.view.row.tied


async def _hydrated(info: Info[Context, None], view: service.CompletionView) -> service.CompletionView:
    if view.feedbacks is None:
        hydration = await service.hydrate(info.context.session, [view.row])
        _remember_flags(info, hydration)
        view.feedbacks, view.comparisons = hydration.views[0].feedbacks, hydration.views[0].comparisons
    return view


def _remember_flags(info: Info[Context, None], hydration: service.Hydration | service.GroupedPage) -> None:
    flags = getattr(info.context, "_metric_flags", None)
    if flags is None:
        flags = {}
        info.context._metric_flags = flags  # type: ignore[attr-defined]
    flags.update(hydration.metric_flags)


@strawberry.type(name="Completion")
class CompletionType:
    view: strawberry.Private[service.CompletionView]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.view.row.id

    @strawberry.field
    def chat_messages(self) -> list[ChatMessageType]:
        return [
            ChatMessageType(
                role=str(m.get("role", "")),
                content=str(m.get("content", "")),
                tool_calls=m.get("tool_calls"),
                tool_call_id=m.get("tool_call_id"),
            )
            for m in self.view.row.messages or []
        ]

    @strawberry.field
    def completion(self) -> str | None:
        return self.view.row.completion

    @strawberry.field(description="The tool calls of the answer, as the model returned them (OpenAI's shape)")
    def tool_calls(self) -> JSON | None:
        return self.view.row.tool_calls

    @strawberry.field
    def source(self) -> CompletionSource:
        return CompletionSource(self.view.row.source)

    @strawberry.field
    def model(self) -> ModelType | None:
        return ModelType(row=self.view.model) if self.view.model is not None else None

    @strawberry.field
    async def direct_feedbacks(self, info: Info[Context, None]) -> list[DirectFeedbackType]:
        view = await _hydrated(info, self.view)
        return [DirectFeedbackType(view=f) for f in view.feedbacks or []]

    @strawberry.field
    async def comparison_feedbacks(self, info: Info[Context, None]) -> list[ComparisonFeedbackType]:
        view = await _hydrated(info, self.view)
        return [ComparisonFeedbackType(view=c) for c in view.comparisons or []]

    @strawberry.field
    def labels(self) -> list[CompletionLabelType]:
        return [CompletionLabelType(key=k, value=str(v)) for k, v in sorted((self.view.row.labels or {}).items())]

    @strawberry.field
    def metadata(self) -> CompletionMetadataType:
        row = self.view.row
        usage = None
        if row.prompt_tokens is not None or row.completion_tokens is not None:
            p, c = row.prompt_tokens or 0, row.completion_tokens or 0
            usage = UsageType(prompt_tokens=p, completion_tokens=c, total_tokens=p + c)
        timings = {"latency_ms": row.latency_ms} if row.latency_ms is not None else None
        system = next((m.get("content") for m in row.messages or [] if m.get("role") == "system"), None)
        parameters = {"finish_reason": row.finish_reason} if row.finish_reason else None
        return CompletionMetadataType(parameters=parameters, timings=timings, usage=usage, system=system)

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.view.row.created_at) or 0

    @strawberry.field
    def session_id(self) -> uuid.UUID | None:
        return self.view.row.session_id

    @strawberry.field
    def user_id(self) -> str | None:
        return self.view.row.user_ref

    @strawberry.field
    def prompt_hash(self) -> str:
        return self.view.row.prompt_hash

    @strawberry.field(
        description="The model service's system prompt template version whose text leads the "
        "messages (null: the caller's own messages)"
    )
    def system_prompt_template(self) -> uuid.UUID | None:
        return self.view.row.system_prompt_template_id

    @strawberry.field
    def ab_campaign_id(self) -> uuid.UUID | None:
        return self.view.row.ab_campaign_id

    @strawberry.field(description="Metadata set by updateCompletion (null when none)")
    def user_metadata(self) -> JSON | None:
        return self.view.row.user_metadata

    @strawberry.field
    def has_user_metadata(self) -> bool:
        return bool(self.view.row.user_metadata)

    @strawberry.field(description="The session of the completion with its turns (at most 200); null without one")
    async def session(self, info: Info[Context, None]) -> SessionType | None:
        row = self.view.row
        if row.session_id is None:
            return None
        turns = await curation.session_turns(info.context.session, row, before_only=False)
        hydration = await service.hydrate(info.context.session, turns)
        _remember_flags(info, hydration)
        return SessionType(id=row.session_id, turns=[CompletionType(view=v) for v in hydration.views])

    @strawberry.field(description="The earlier turns of the completion's session, the nearest first")
    async def history(self, info: Info[Context, None]) -> list[CompletionHistoryEntryType]:
        turns = await curation.session_turns(info.context.session, self.view.row, before_only=True)
        return [
            CompletionHistoryEntryType(
                level=level,
                completion_id=turn.id,
                completion=turn.completion,
                created_at=epoch(turn.created_at) or 0,
                prompt=next(
                    (str(m.get("content")) for m in reversed(turn.messages or []) if m.get("role") == "user"), None
                ),
            )
            for level, turn in enumerate(reversed(turns), start=1)
        ]

    @strawberry.field(description="How many other completions of the same prompt the filter selects")
    async def siblings_count(self, info: Info[Context, None], filter: ListCompletionsFilterInput) -> int:  # noqa: A002
        ctx = info.context
        return await curation.siblings_count(ctx.session, ctx.principal, self.view.row, filter)


@strawberry.type(name="Session", description="The turns (completions) of a user session, oldest first")
class SessionType:
    id: uuid.UUID
    turns: list[CompletionType]


@strawberry.type(name="CompletionHistoryEntryOuput", description="An earlier turn of the completion's session")
class CompletionHistoryEntryType:
    level: int = strawberry.field(description="1 for the turn just before, 2 for the one before it, ...")
    completion_id: uuid.UUID
    prompt: str | None = strawberry.field(description="The turn's last user message")
    completion: str | None
    created_at: int


@strawberry.type(name="CompletionConnection")
class CompletionConnection:
    total_count: int
    page_info: PageInfo
    nodes: list[CompletionType]


@strawberry.type(name="CompletionList")
class CompletionListType:
    nodes: list[CompletionType]
    page_info: PageInfo


@strawberry.type(name="DirectFeedbacksStats")
class DirectFeedbacksStatsType:
    stats: strawberry.Private[service.GroupStats]

    @strawberry.field
    def metric(self, info: Info[Context, None]) -> MetricType:
        return _metric(info, self.stats.metric)

    @strawberry.field
    def feedbacks(self) -> int:
        return self.stats.feedbacks

    @strawberry.field
    def average(self) -> float | None:
        return self.stats.average

    @strawberry.field
    def max(self) -> float | None:
        return self.stats.max

    @strawberry.field
    def min(self) -> float | None:
        return self.stats.min

    @strawberry.field
    def stddev(self) -> float | None:
        return self.stats.stddev

    @strawberry.field
    def sum(self) -> float | None:
        return self.stats.sum


@strawberry.type(name="CompletionGroup")
class CompletionGroupType:
    group: strawberry.Private[service.Group]

    @strawberry.field
    def key(self) -> str | None:
        return self.group.key

    @strawberry.field
    def count(self) -> int:
        return self.group.count

    @strawberry.field
    def direct_feedbacks_stats(self) -> list[DirectFeedbacksStatsType]:
        return [DirectFeedbacksStatsType(stats=s) for s in self.group.stats]

    @strawberry.field
    async def completions(
        self, info: Info[Context, None], page: CursorPageInput | None = None, order: list[OrderPair] | None = None
    ) -> CompletionListType:
        ctx = info.context
        result = await service.page_completions(
            ctx.session, self.group.conditions, page, service.completion_order(order), ignore_group_cursors=True
        )
        hydration = await service.hydrate(ctx.session, result.items)
        _remember_flags(info, hydration)
        return CompletionListType(
            nodes=[CompletionType(view=v) for v in hydration.views],
            page_info=PageInfo.of(result),
        )


@strawberry.type(name="CompletionGroupConnection")
class CompletionGroupConnection:
    total_count: int
    group_by: CompletionGroupBy
    page_info: PageInfo
    nodes: list[CompletionGroupType]


@strawberry.type
class InteractionQuery:
    @strawberry.field(
        description="One interaction (completion) of a use case",
        extensions=[requires("use_case:read", use_case="use_case")],
    )
    async def completion(self, info: Info[Context, None], use_case: IdOrKey, id: uuid.UUID) -> CompletionType | None:  # noqa: A002
        ctx = info.context
        hydration = await service.get_interaction(ctx.session, ctx.principal, use_case=use_case, completion_id=id)
        _remember_flags(info, hydration)
        return CompletionType(view=hydration.views[0])

    @strawberry.field(
        description=(
            "Interactions of a use case, filtered, ordered by any documented field (creation time by default),"
            " cursor-paged"
        ),
        extensions=[requires("use_case:read", use_case="filter.use_case")],
    )
    async def completions(
        self,
        info: Info[Context, None],
        filter: ListCompletionsFilterInput,  # noqa: A002
        page: CursorPageInput | None = None,
        order: list[OrderPair] | None = None,
    ) -> CompletionConnection:
        ctx = info.context
        result = await service.list_interactions(
            ctx.session,
            ctx.principal,
            use_case=filter.use_case,
            flt=filter,
            page=page,
            order=order,
            ab_campaign=filter.ab_campaign,
        )
        _remember_flags(info, result.hydration)
        return CompletionConnection(
            total_count=result.total_count,
            page_info=PageInfo.of(result.page),
            nodes=[CompletionType(view=v) for v in result.hydration.views],
        )

    @strawberry.field(
        description="Interactions grouped by model or prompt, with counts and feedback aggregates",
        extensions=[requires("use_case:read", use_case="filter.use_case")],
    )
    async def completions_grouped(
        self,
        info: Info[Context, None],
        group_by: CompletionGroupBy,
        filter: ListCompletionsFilterInput,  # noqa: A002
        page: CursorPageInput | None = None,
        order: list[OrderPair] | None = None,
    ) -> CompletionGroupConnection:
        ctx = info.context
        result = await service.list_grouped(
            ctx.session,
            ctx.principal,
            use_case=filter.use_case,
            group_by=group_by.value,
            flt=filter,
            page=page,
            order=order,
            ab_campaign=filter.ab_campaign,
        )
        _remember_flags(info, result)
        return CompletionGroupConnection(
            total_count=result.total_count,
            group_by=group_by,
            page_info=PageInfo(
                has_next_page=result.has_next_page,
                has_previous_page=result.has_previous_page,
                start_cursor=result.start_cursor,
                end_cursor=result.end_cursor,
            ),
            nodes=[CompletionGroupType(group=g) for g in result.groups],
        )


@strawberry.type
class InteractionMutation:
    @strawberry.mutation(
        description="Curate a completion: labels (add / remove / set) and metadata",
        extensions=[authenticated()],  # the completion's use case is checked for feedback:write
    )
    async def update_completion(self, info: Info[Context, None], input: UpdateCompletion) -> CompletionType:  # noqa: A002
        ctx = info.context
        completion = await curation.update_completion(ctx.session, ctx.principal, input)
        hydration = await service.hydrate(ctx.session, [completion])
        _remember_flags(info, hydration)
        return CompletionType(view=hydration.views[0])
