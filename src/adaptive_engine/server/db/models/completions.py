"""Completions: every answer served (or logged) with its prompt. The interactions domain reads them."""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from adaptive_engine.server.db.base import Base, CreatedAtMixin, IdMixin

# The roll-ups' model_key for traffic of no model (a primary-key column cannot be NULL on PostgreSQL).
NO_MODEL = ""


class Completion(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "completions"

    use_case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"))
    model_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("models.id", ondelete="SET NULL"), default=None)
    # The model's key when served; kept even if the model row goes away.
    model_key: Mapped[str | None] = mapped_column(String(200), default=None)
    # The prompt as chat messages [{"role", "content"}].
    messages: Mapped[list] = mapped_column(default=list)
    completion: Mapped[str | None] = mapped_column(Text, default=None)
    # LIVE, OFFLINE, AUTOMATION, DATASET, EVALUATION (wire enum CompletionSource).
    source: Mapped[str] = mapped_column(String(20), default="LIVE")
    # Hash of the prompt messages, to group interactions by prompt.
    prompt_hash: Mapped[str] = mapped_column(String(64))
    session_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    user_ref: Mapped[str | None] = mapped_column(String(200), default=None)
    labels: Mapped[dict] = mapped_column(default=dict)
    # Completions of one request with n > 1 share a request id.
    request_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    finish_reason: Mapped[str | None] = mapped_column(String(20), default=None)
    # Who called (served completions): the API key and its holder; None for logged or console traffic.
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    user_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # What the call cost in dollars, from the model's prices when it was served (None: not priced).
    cost: Mapped[float | None] = mapped_column(Float, default=None)
    # The A/B campaign that routed this request, if any (the model is the arm).
    ab_campaign_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # The tool calls of the answer, as the model returned them (OpenAI's [{"id", "type", "function"}]).
    tool_calls: Mapped[list | None] = mapped_column(default=None)
    # Set by curation (updateCompletion.metadata), e.g. for external reward servers.
    user_metadata: Mapped[dict | None] = mapped_column(default=None)
    # The system prompt template version the model service added as the system message (None: none added).
    system_prompt_template_id: Mapped[uuid.UUID | None] = mapped_column(default=None)

    __table_args__ = (
        Index("ix_completions_use_case_created", "use_case_id", "created_at", "id"),
        Index("ix_completions_use_case_prompt", "use_case_id", "prompt_hash"),
        Index("ix_completions_session", "session_id"),
        Index("ix_completions_ab_campaign", "ab_campaign_id"),
    )


class InferenceError(IdMixin, CreatedAtMixin, Base):
    """A model call of the gateway that failed: counted as an error in the use case's activity."""

    __tablename__ = "inference_errors"

    use_case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"))
    model_key: Mapped[str | None] = mapped_column(String(200), default=None)
    # The error's code (UNAVAILABLE, INTERNAL, DEADLINE_EXCEEDED ...).
    code: Mapped[str] = mapped_column(String(40))
    api_key_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    user_id: Mapped[uuid.UUID | None] = mapped_column(default=None)

    __table_args__ = (Index("ix_inference_errors_use_case_created", "use_case_id", "created_at"),)


class TrafficHourly(Base):
    """Completions and failed calls per use case, hour and model, added to as they are written (see
    domains/interactions/rollups.py): activity charts read these instead of every completion."""

    __tablename__ = "traffic_hourly"

    use_case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), primary_key=True)
    # Epoch seconds of the hour's start (UTC).
    hour: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    model_key: Mapped[str] = mapped_column(String(200), primary_key=True)
    interactions: Mapped[int] = mapped_column(BigInteger, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    # Latency of the completions that have one: how many, their sum and their maximum (0 with none).
    latency_count: Mapped[int] = mapped_column(BigInteger, default=0)
    latency_sum_ms: Mapped[float] = mapped_column(Float, default=0.0)
    latency_max_ms: Mapped[float] = mapped_column(Float, default=0.0)
    errors: Mapped[int] = mapped_column(BigInteger, default=0)
