"""REST bodies of the data plane's logging routes, with the wire names of the official client's openapi."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ChatMessageIn(_Body):
    role: str
    # A string, or OpenAI-style content parts; None is refused by the service with the row named.
    content: Any = None
    name: str | None = None
    completion_id: uuid.UUID | None = None


class InteractionFeedbackIn(_Body):
    metric: str
    value: Any
    reason: str | None = None
    details: str | None = None
    created_at: str | int | float | None = None


class AddInteractionsRequest(_Body):
    use_case: str
    completion: str
    model_service: str | None = None
    prompt: str | None = None
    messages: list[ChatMessageIn] | None = None
    feedbacks: list[InteractionFeedbackIn] | None = None
    user: uuid.UUID | None = None
    session_id: uuid.UUID | None = None
    created_at: str | int | float | None = None
    ab_campaign: str | None = None
    labels: dict[str, str] | None = None


class AddInteractionsResponse(BaseModel):
    completion_id: uuid.UUID
    session_id: uuid.UUID
    feedback_ids: list[uuid.UUID]


class AddFeedbackRequest(_Body):
    value: Any
    completion_id: uuid.UUID
    metric: str
    user_id: uuid.UUID | None = None
    reason: str | None = None
    details: str | None = None


class FeedbackOutput(BaseModel):
    feedback_id: uuid.UUID


class CompletionText(_Body):
    text: str
    model: str


class AddComparisonRequest(_Body):
    metric: str
    preferred_completion: uuid.UUID | CompletionText
    other_completion: uuid.UUID | CompletionText
    prompt: str | None = None
    messages: list[ChatMessageIn] | None = None
    tied: Literal["good", "bad"] | None = None
    use_case: str | None = None
    user_id: uuid.UUID | None = None


class ComparisonOutput(BaseModel):
    comparison_id: uuid.UUID


class AddOutcomeRequest(_Body):
    value: Any
    metric: str
    session_id: uuid.UUID
    user_id: uuid.UUID | None = None


class OutcomeOutput(BaseModel):
    outcome_id: uuid.UUID
