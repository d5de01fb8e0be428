"""Queries over completions: the filter language of ``ListCompletionsFilterInput`` turned into SQL.

Filters arrive as objects with the input's snake_case attributes (the GraphQL inputs, or anything
shaped like them), so other domains (datasets from filters, evaluation) can reuse ``completion_filter``.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import String, and_, cast, exists, false, not_, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.db.lookup import parse_uuid
from adaptive_engine.server.db.models import Comparison, Completion, Feedback
from adaptive_engine.server.db.pagination import contains
from adaptive_engine.server.domains.feedback_keys.service import get_key
from adaptive_engine.server.errors import InvalidInput

SOURCES = ("LIVE", "OFFLINE", "AUTOMATION", "DATASET", "EVALUATION")


def _uuid(value: Any, what: str) -> uuid.UUID:
    parsed = parse_uuid(value)
    if parsed is None:
        raise InvalidInput(f"{what} must be a UUID, not {value!r}")
    return parsed


def _value(value: Any) -> Any:
    return getattr(value, "value", value)


def _models(values: list[str]) -> Any:
    ids = [u for u in (parse_uuid(v) for v in values) if u is not None]
    return or_(Completion.model_key.in_(values), Completion.model_id.in_(ids) if ids else false())


def _id_or_key_condition(cond: Any) -> Any:
    parts = []
    if cond.eq is not None:
        parts.append(_models([cond.eq]))
    if cond.in_ is not None:
        parts.append(_models(list(cond.in_)))
    if cond.neq is not None:
        parts.append(or_(not_(_models([cond.neq])), Completion.model_key.is_(None)))
    return and_(true(), *parts)


def _string_condition(column: Any, cond: Any) -> Any:
    parts = []
    if cond.eq is not None:
        parts.append(column == cond.eq)
    if cond.in_ is not None:
        parts.append(column.in_(list(cond.in_)))
    if cond.neq is not None:
        parts.append(or_(column != cond.neq, column.is_(None)))
    return and_(true(), *parts)


def _text_condition(column: Any, cond: Any) -> Any:
    parts = []
    if cond.eq is not None:
        parts.append(column == cond.eq)
    if cond.contains is not None:
        parts.append(contains(column, cond.contains))
    return and_(true(), *parts)


def _numeric(column: Any, cond: Any) -> list[Any]:
    parts = []
    for name, op in (
        ("eq", "__eq__"),
        ("neq", "__ne__"),
        ("gt", "__gt__"),
        ("gte", "__ge__"),
        ("lt", "__lt__"),
        ("lte", "__le__"),
    ):
        bound = getattr(cond, name, None)
        if bound is not None:
            parts.append(getattr(column, op)(bound))
    return parts


def _label(key: str, values: list[str] | None) -> Any:
    column = Completion.labels[key].as_string()
    return column.in_(values) if values else column.is_not(None)


def _timerange(timerange: Any) -> Any:
    start, end = timerange.from_, timerange.to
    if start > end:
        raise InvalidInput("timerange: 'from' is after 'to'")
    return and_(Completion.created_at >= start, Completion.created_at <= end)


async def _feedback_exists(session: AsyncSession, metric: str, value_parts: list[Any], reasons: Any, user: Any) -> Any:
    key = await get_key(session, metric)
    conditions = [Feedback.completion_id == Completion.id, Feedback.metric_id == key.id, *value_parts]
    if reasons:
        conditions.append(Feedback.reason.in_(list(reasons)))
    if user is not None:
        conditions.append(Feedback.user_ref == str(user))
    return exists().where(*conditions)


async def _comparison_exists(session: AsyncSession, metric: str) -> Any:
    key = await get_key(session, metric)
    return exists().where(
        Comparison.metric_id == key.id,
        or_(Comparison.preferred_completion_id == Completion.id, Comparison.other_completion_id == Completion.id),
    )


def _source(value: Any) -> str:
    source = str(_value(value)).upper()
    if source not in SOURCES:
        raise InvalidInput(f"source must be one of {', '.join(SOURCES)}, not {value!r}")
    return source


async def expression_filter(session: AsyncSession, expr: Any, depth: int = 0) -> Any:
    """SQL for a ``CompletionFilterExpression`` (AND / OR / NOT of conditions)."""
    if depth > 32:
        raise InvalidInput("advancedFilter is nested too deeply")
    parts: list[Any] = []
    if getattr(expr, "and_", None) is not None:
        parts.append(and_(true(), *[await expression_filter(session, e, depth + 1) for e in expr.and_]))
    if getattr(expr, "or_", None) is not None:
        parts.append(or_(false(), *[await expression_filter(session, e, depth + 1) for e in expr.or_]))
    if getattr(expr, "not_", None) is not None:
        parts.append(not_(await expression_filter(session, expr.not_, depth + 1)))
    if getattr(expr, "timerange", None) is not None:
        parts.append(_timerange(expr.timerange))
    if getattr(expr, "model", None) is not None:
        parts.append(_id_or_key_condition(expr.model))
    if getattr(expr, "label", None) is not None:
        column = Completion.labels[expr.label.key].as_string()
        parts.append(
            _string_condition(column, expr.label.value) if expr.label.value is not None else column.is_not(None)
        )
    if getattr(expr, "feedbacks", None) is not None:
        fb = expr.feedbacks
        value_parts = _numeric(Feedback.value, fb.value) if fb.value is not None else []
        parts.append(await _feedback_exists(session, fb.metric, value_parts, fb.reasons, fb.user))
    if getattr(expr, "source", None) is not None:
        parts.append(Completion.source == _source(expr.source))
    if getattr(expr, "prompt_hash", None) is not None:
        parts.append(_string_condition(Completion.prompt_hash, expr.prompt_hash))
    if getattr(expr, "session_id", None) is not None:
        parts.append(Completion.session_id == _uuid(expr.session_id, "sessionId"))
    if getattr(expr, "user_id", None) is not None:
        parts.append(Completion.user_ref == str(expr.user_id))
    if getattr(expr, "completion_id", None) is not None:
        parts.append(Completion.id == _uuid(expr.completion_id, "completionId"))
    if getattr(expr, "completion", None) is not None:
        parts.append(_text_condition(Completion.completion, expr.completion))
    if getattr(expr, "prompt", None) is not None:
        parts.append(_text_condition(cast(Completion.messages, String), expr.prompt))
    if getattr(expr, "ab_campaign", None) is not None:
        parts.append(Completion.ab_campaign_id == _uuid(expr.ab_campaign, "abCampaign"))
    return and_(true(), *parts)


async def completion_filter(
    session: AsyncSession, use_case_id: uuid.UUID, flt: Any, ab_campaign_id: uuid.UUID | None = None
) -> list[Any]:
    """WHERE conditions for a ``ListCompletionsFilterInput``-shaped object in one use case."""
    conditions: list[Any] = [Completion.use_case_id == use_case_id]
    if ab_campaign_id is not None:
        conditions.append(Completion.ab_campaign_id == ab_campaign_id)
    if flt is None:
        return conditions
    if getattr(flt, "advanced_filter", None) is not None:
        # The advanced expression takes precedence over the simple fields.
        conditions.append(await expression_filter(session, flt.advanced_filter))
        return conditions
    if flt.models:
        conditions.append(_models(list(flt.models)))
    if flt.timerange is not None:
        conditions.append(_timerange(flt.timerange))
    if flt.session_id is not None:
        conditions.append(Completion.session_id == _uuid(flt.session_id, "sessionId"))
    if flt.user_id is not None:
        conditions.append(Completion.user_ref == str(flt.user_id))
    if flt.completion_id is not None:
        conditions.append(Completion.id == _uuid(flt.completion_id, "completionId"))
    for fb in flt.feedbacks or []:
        conditions.append(await _feedback_exists(session, fb.metric, _numeric(Feedback.value, fb), fb.reasons, fb.user))
    for comparison in flt.comparisons or []:
        conditions.append(await _comparison_exists(session, comparison.metric))
    for label in flt.labels or []:
        conditions.append(_label(label.key, list(label.value) if label.value else None))
    if flt.prompt_hash is not None:
        conditions.append(Completion.prompt_hash == flt.prompt_hash)
    if flt.source:
        conditions.append(Completion.source.in_([_source(s) for s in flt.source]))
    if flt.completion is not None:
        conditions.append(_text_condition(Completion.completion, _Contains(flt.completion)))
    if flt.prompt is not None:
        conditions.append(_text_condition(cast(Completion.messages, String), _Contains(flt.prompt)))
    return conditions


class _Contains:
    def __init__(self, text: str) -> None:
        self.eq = None
        self.contains = text


def base_query(conditions: list[Any]) -> Any:
    return select(Completion).where(*conditions)
