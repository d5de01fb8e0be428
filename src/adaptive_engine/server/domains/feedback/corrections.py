"""Feedback added or corrected by hand (curation). A corrected value recounts its hour of the roll-ups from the
rows, so statistics stay exact."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.models.completions import NO_MODEL
from adaptive_engine.server.domains.feedback.service import log_metric
from adaptive_engine.server.domains.feedback_keys.service import coerce_value, get_key
from adaptive_engine.server.domains.interactions.ingest import IngestWriter
from adaptive_engine.server.domains.interactions.records import FeedbackRecord
from adaptive_engine.server.domains.interactions.rollups import HOUR, hour_of
from adaptive_engine.server.errors import InvalidInput, NotFound


async def add_direct_feedback(
    session: AsyncSession,
    principal: Principal,
    writer: IngestWriter,
    *,
    completion_id: uuid.UUID,
    metric: str,
    value: Any,
    reason: str | None,
    details: str | None,
    user: str | None,
) -> FeedbackRecord:
    """A metric value on a completion, as the data plane logs it (roll-ups included), read back."""
    feedback_id = await log_metric(
        session,
        principal,
        writer,
        completion_id=completion_id,
        metric=metric,
        value=value,
        user=user,
        reason=reason,
        details=details,
    )
    row = await session.get(orm.Feedback, feedback_id)
    if row is None:
        raise NotFound(f"feedback '{feedback_id}' not found")
    return FeedbackRecord.of(row, await get_key(session, row.metric_id))


async def update_feedback(
    session: AsyncSession, principal: Principal, feedback_id: uuid.UUID, inp: Any
) -> FeedbackRecord:
    if inp.value is None and inp.details is None:
        raise InvalidInput("give value or details (or both) to update")
    row = (
        await session.execute(select(orm.Feedback).where(orm.Feedback.id == feedback_id).with_for_update())
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"feedback '{feedback_id}' not found")
    await principal.require(session, "feedback:write", row.use_case_id, f"feedback '{feedback_id}'")
    metric = await get_key(session, row.metric_id)
    if inp.details is not None:
        row.details = inp.details
    if inp.value is not None:
        new = coerce_value(metric, inp.value)
        if new != row.value:
            row.value = new
            await session.flush()
            await _recount_hour(session, row)
    await session.flush()
    return FeedbackRecord.of(row, metric)


async def _recount_hour(session: AsyncSession, feedback: orm.Feedback) -> None:
    """Set the roll-up cell of ``feedback`` (its use case, key, hour and model) from the rows again."""
    model_key = (
        await session.execute(select(orm.Completion.model_key).where(orm.Completion.id == feedback.completion_id))
    ).scalar_one_or_none()
    hour = hour_of(feedback.created_at)
    start = feedback.created_at.replace(minute=0, second=0, microsecond=0)
    model_condition = (
        (orm.Completion.model_key == model_key)
        if model_key
        else ((orm.Completion.model_key.is_(None)) | (orm.Completion.model_key == NO_MODEL))
    )
    value = orm.Feedback.value
    count, total, total_sq, low, high = (
        await session.execute(
            select(func.count(), func.sum(value), func.sum(value * value), func.min(value), func.max(value))
            .join(orm.Completion, orm.Completion.id == orm.Feedback.completion_id)
            .where(
                orm.Feedback.use_case_id == feedback.use_case_id,
                orm.Feedback.metric_id == feedback.metric_id,
                orm.Feedback.created_at >= start,
                orm.Feedback.created_at < start + timedelta(seconds=HOUR),
                model_condition,
            )
        )
    ).one()
    cell = await session.get(
        orm.FeedbackHourly, (feedback.use_case_id, feedback.metric_id, hour, model_key or NO_MODEL)
    )
    if cell is not None:
        cell.count, cell.total, cell.total_sq = count, total or 0.0, total_sq or 0.0
        cell.min_value, cell.max_value = low or 0.0, high or 0.0
        await session.flush()
