"""GraphQL of interactions: completion(useCase, id), completions(...) and completionsGrouped(...)."""

from __future__ import annotations

import enum
import uuid
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types import Info

from adaptive_engine.server.auth.guard import authenticated, requires
from adaptive_engine.server.domains.feedback.types import MetricType, to_gql_metric
from adaptive_engine.server.domains.feedback_keys.records import MetricRecord
from adaptive_engine.server.domains.interactions import curation, service
from adaptive_engine.server.domains.interactions.records import CompletionRecord, FeedbackRecord
from adaptive_engine.server.domains.models.types import ModelType, to_gql_model
from adaptive_engine.server.domains.use_cases.graphql import UseCaseType, to_gql_use_case
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


def _metric(info: Info[Context, None], metric: MetricRecord) -> MetricType:
    flags = getattr(info.context, "_metric_flags", {}).get(metric.id)
    return to_gql_metric(metric, flags=flags)


def _feedback_metric(root: DirectFeedbackType, info: Info[Context, None]) -> MetricType | None:
    return _metric(info, root.metric_record)


@strawberry.type(name="DirectFeedback")
class DirectFeedbackType:
    id: uuid.UUID
    value: float
    metric: MetricType | None = strawberry.field(resolver=_feedback_metric)
    reason: str | None
    details: str | None
    user_id: str | None
    created_at: int
    metric_record: strawberry.Private[MetricRecord]


def to_gql_direct_feedback(feedback: FeedbackRecord) -> DirectFeedbackType:
    return DirectFeedbackType(
        id=feedback.id,
        value=feedback.value,
        reason=feedback.reason,
        details=feedback.details,
        user_id=feedback.user_ref,
        created_at=epoch(feedback.created_at) or 0,
        metric_record=feedback.metric,
    )


def _comparison_metric(root: ComparisonFeedbackType, info: Info[Context, None]) -> MetricType | None:
    return _metric(info, root.metric_record)


@strawberry.type(name="ComparisonFeedback")
class ComparisonFeedbackType:
    id: uuid.UUID
    created_at: int
    usecase: UseCaseType | None
    metric: MetricType | None = strawberry.field(resolver=_comparison_metric)
    prefered_completion: CompletionType | None
    other_completion: CompletionType | None
    tied: str | None = strawberry.field(
        description="'good' or 'bad' when both completions tied; null when the preferred one won"
    )
    metric_record: strawberry.Private[MetricRecord]


def to_gql_comparison(comparison: service.ComparisonView) -> ComparisonFeedbackType:
    return ComparisonFeedbackType(
        id=comparison.id,
        created_at=epoch(comparison.created_at) or 0,
        usecase=to_gql_use_case(comparison.use_case),
        prefered_completion=to_gql_completion(comparison.preferred),
        other_completion=to_gql_completion(comparison.other),
        tied=comparison.tied,
        metric_record=comparison.metric,
    )


async def _hydrated(info: Info[Context, None], view: service.CompletionView) -> service.CompletionView:
    if view.feedbacks is None:
        hydration = await service.hydrate_by_id(info.context.session, [view.completion.id])
        _remember_flags(info, hydration)
        view.feedbacks, view.comparisons = hydration.views[0].feedbacks, hydration.views[0].comparisons
    return view


def _remember_flags(info: Info[Context, None], hydration: service.Hydration | service.GroupedPage) -> None:
    flags = getattr(info.context, "_metric_flags", None)
    if flags is None:
        flags = {}
        info.context._metric_flags = flags  # type: ignore[attr-defined]
    flags.update(hydration.metric_flags)


async def _direct_feedbacks(root: CompletionType, info: Info[Context, None]) -> list[DirectFeedbackType]:
    view = await _hydrated(info, root.view)
    return [to_gql_direct_feedback(f) for f in view.feedbacks or []]


async def _comparison_feedbacks(root: CompletionType, info: Info[Context, None]) -> list[ComparisonFeedbackType]:
    view = await _hydrated(info, root.view)
    return [to_gql_comparison(c) for c in view.comparisons or []]


@strawberry.type(name="Completion")
class CompletionType:
    id: uuid.UUID
    chat_messages: list[ChatMessageType]
    completion: str | None
    tool_calls: JSON | None = strawberry.field(
        description="The tool calls of the answer, as the model returned them (OpenAI's shape)"
    )
    source: CompletionSource
    model: ModelType | None
    direct_feedbacks: list[DirectFeedbackType] = strawberry.field(resolver=_direct_feedbacks)
    comparison_feedbacks: list[ComparisonFeedbackType] = strawberry.field(resolver=_comparison_feedbacks)
    labels: list[CompletionLabelType]
    metadata: CompletionMetadataType
    created_at: int
    session_id: uuid.UUID | None
    user_id: str | None
    prompt_hash: str
    system_prompt_template: uuid.UUID | None = strawberry.field(
        description="The model service's system prompt template version whose text leads the "
        "messages (null: the caller's own messages)"
    )
    ab_campaign_id: uuid.UUID | None
    user_metadata: JSON | None = strawberry.field(description="Metadata set by updateCompletion (null when none)")
    has_user_metadata: bool
    # The view, hydrated with its feedbacks on first use when a comparison's side.
    view: strawberry.Private[service.CompletionView]

    @strawberry.field(description="The session of the completion with its turns (at most 200); null without one")
    async def session(self, info: Info[Context, None]) -> SessionType | None:
        completion = self.view.completion
        if completion.session_id is None:
            return None
        turns = await curation.session_turns(info.context.session, completion, before_only=False)
        hydration = await service.hydrate(info.context.session, turns)
        _remember_flags(info, hydration)
        return SessionType(id=completion.session_id, turns=[to_gql_completion(v) for v in hydration.views])

    @strawberry.field(description="The earlier turns of the completion's session, the nearest first")
    async def history(self, info: Info[Context, None]) -> list[CompletionHistoryEntryType]:
        rows = await curation.session_turns(info.context.session, self.view.completion, before_only=True)
        turns = [CompletionRecord.of(r) for r in rows]
        return [
            CompletionHistoryEntryType(
                level=level,
                completion_id=turn.id,
                completion=turn.completion,
                created_at=epoch(turn.created_at) or 0,
                prompt=next((str(m.get("content")) for m in reversed(turn.messages) if m.get("role") == "user"), None),
            )
            for level, turn in enumerate(reversed(turns), start=1)
        ]

    @strawberry.field(description="How many other completions of the same prompt the filter selects")
    async def siblings_count(self, info: Info[Context, None], filter: ListCompletionsFilterInput) -> int:  # noqa: A002
        ctx = info.context
        return await curation.siblings_count(ctx.session, ctx.principal, self.view.completion, filter)


def to_gql_completion(view: service.CompletionView) -> CompletionType:
    completion = view.completion
    usage = None
    if completion.prompt_tokens is not None or completion.completion_tokens is not None:
        p, c = completion.prompt_tokens or 0, completion.completion_tokens or 0
        usage = UsageType(prompt_tokens=p, completion_tokens=c, total_tokens=p + c)
    timings = {"latency_ms": completion.latency_ms} if completion.latency_ms is not None else None
    system = next((m.get("content") for m in completion.messages if m.get("role") == "system"), None)
    parameters = {"finish_reason": completion.finish_reason} if completion.finish_reason else None
    return CompletionType(
        id=completion.id,
        chat_messages=[
            ChatMessageType(
                role=str(m.get("role", "")),
                content=str(m.get("content", "")),
                tool_calls=m.get("tool_calls"),
                tool_call_id=m.get("tool_call_id"),
            )
            for m in completion.messages
        ],
        completion=completion.completion,
        tool_calls=JSON(completion.tool_calls),
        source=CompletionSource(completion.source),
        model=to_gql_model(view.model) if view.model is not None else None,
        labels=[CompletionLabelType(key=k, value=str(v)) for k, v in sorted(completion.labels.items())],
        metadata=CompletionMetadataType(parameters=JSON(parameters), timings=JSON(timings), usage=usage, system=system),
        created_at=epoch(completion.created_at) or 0,
        session_id=completion.session_id,
        user_id=completion.user_ref,
        prompt_hash=completion.prompt_hash,
        system_prompt_template=completion.system_prompt_template_id,
        ab_campaign_id=completion.ab_campaign_id,
        user_metadata=JSON(completion.user_metadata),
        has_user_metadata=bool(completion.user_metadata),
        view=view,
    )


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


def _stats_metric(root: DirectFeedbacksStatsType, info: Info[Context, None]) -> MetricType:
    return _metric(info, root.metric_record)


@strawberry.type(name="DirectFeedbacksStats")
class DirectFeedbacksStatsType:
    metric: MetricType = strawberry.field(resolver=_stats_metric)
    feedbacks: int
    average: float | None
    max: float | None
    min: float | None
    stddev: float | None
    sum: float | None
    metric_record: strawberry.Private[MetricRecord]


def to_gql_group_stats(stats: service.GroupStats) -> DirectFeedbacksStatsType:
    return DirectFeedbacksStatsType(
        feedbacks=stats.feedbacks,
        average=stats.average,
        max=stats.max,
        min=stats.min,
        stddev=stats.stddev,
        sum=stats.sum,
        metric_record=stats.metric,
    )


@strawberry.type(name="CompletionGroup")
class CompletionGroupType:
    key: str | None
    count: int
    direct_feedbacks_stats: list[DirectFeedbacksStatsType]
    # The listing's conditions plus the group's key: what selects the group's completions.
    conditions: strawberry.Private[list[Any]]

    @strawberry.field
    async def completions(
        self, info: Info[Context, None], page: CursorPageInput | None = None, order: list[OrderPair] | None = None
    ) -> CompletionListType:
        ctx = info.context
        result = await service.page_completions(
            ctx.session, self.conditions, page, service.completion_order(order), ignore_group_cursors=True
        )
        hydration = await service.hydrate(ctx.session, result.items)
        _remember_flags(info, hydration)
        return CompletionListType(
            nodes=[to_gql_completion(v) for v in hydration.views],
            page_info=PageInfo.of(result),
        )


def to_gql_group(group: service.Group) -> CompletionGroupType:
    return CompletionGroupType(
        key=group.key,
        count=group.count,
        direct_feedbacks_stats=[to_gql_group_stats(s) for s in group.stats],
        conditions=group.conditions,
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
        return to_gql_completion(hydration.views[0])

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
            nodes=[to_gql_completion(v) for v in result.hydration.views],
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
            nodes=[to_gql_group(g) for g in result.groups],
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
        return to_gql_completion(hydration.views[0])
