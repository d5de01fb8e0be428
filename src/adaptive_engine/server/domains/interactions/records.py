"""What the interactions domain hands its readers: plain values built from the rows in one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from adaptive_engine.server.db import models as orm
from adaptive_engine.server.domains.feedback_keys.records import MetricRecord


@dataclass(frozen=True, slots=True)
class CompletionRecord:
    id: uuid.UUID
    use_case_id: uuid.UUID
    model_id: uuid.UUID | None
    messages: list[dict[str, Any]]
    completion: str | None
    tool_calls: list[Any] | None
    source: str
    labels: dict[str, Any]
    prompt_tokens: int | None
    completion_tokens: int | None
    latency_ms: float | None
    finish_reason: str | None
    created_at: datetime
    session_id: uuid.UUID | None
    user_ref: str | None
    prompt_hash: str
    system_prompt_template_id: uuid.UUID | None
    ab_campaign_id: uuid.UUID | None
    user_metadata: dict[str, Any] | None

    @classmethod
    def of(cls, completion: orm.Completion) -> CompletionRecord:
        return cls(
            id=completion.id,
            use_case_id=completion.use_case_id,
            model_id=completion.model_id,
            messages=list(completion.messages or []),
            completion=completion.completion,
            tool_calls=completion.tool_calls,
            source=completion.source,
            labels=dict(completion.labels or {}),
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            latency_ms=completion.latency_ms,
            finish_reason=completion.finish_reason,
            created_at=completion.created_at,
            session_id=completion.session_id,
            user_ref=completion.user_ref,
            prompt_hash=completion.prompt_hash,
            system_prompt_template_id=completion.system_prompt_template_id,
            ab_campaign_id=completion.ab_campaign_id,
            user_metadata=completion.user_metadata,
        )


@dataclass(frozen=True, slots=True)
class FeedbackRecord:
    """A metric value logged on a completion, with its feedback key."""

    id: uuid.UUID
    value: float
    metric: MetricRecord
    reason: str | None
    details: str | None
    user_ref: str | None
    created_at: datetime

    @classmethod
    def of(cls, feedback: orm.Feedback, metric: orm.Metric) -> FeedbackRecord:
        return cls(
            id=feedback.id,
            value=feedback.value,
            metric=MetricRecord.of(metric),
            reason=feedback.reason,
            details=feedback.details,
            user_ref=feedback.user_ref,
            created_at=feedback.created_at,
        )
