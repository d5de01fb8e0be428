"""Graders (judges, prebuilt judges, remote reward servers, custom functions), their results, and the
registry of remote environments (reward servers)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from adaptive_engine.server.db.base import Base, CreatedAtMixin, IdMixin
from adaptive_engine.server.db.models.feedback_keys import Metric
from adaptive_engine.server.db.models.registry import Model
from adaptive_engine.server.db.models.use_cases import UseCase
from adaptive_engine.server.timestamps import utcnow


class Grader(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "graders"

    use_case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    # JUDGE, PREBUILT, REMOTE or CUSTOM (wire enum GraderTypeEnum)
    grader_type: Mapped[str] = mapped_column(String(20))
    # Per type: judge {model, criteria, examples, system_template, user_template}; prebuilt {criteria, model};
    # remote {url, version, description, name}; custom {description, code}.
    config: Mapped[dict] = mapped_column(default=dict)
    # The feedback key the grader writes to.
    metric_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("metrics.id", ondelete="RESTRICT"), index=True)
    locked: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Online grading: the share of new live completions of the use case this grader scores (0 = off),
    # and the creation time of the newest completion already considered.
    online_rate: Mapped[float] = mapped_column(Float, default=0.0)
    online_cursor: Mapped[datetime | None] = mapped_column(default=None)

    use_case: Mapped[UseCase] = relationship(lazy="joined")
    metric: Mapped[Metric] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("use_case_id", "key"),)


class GradingResult(IdMixin, CreatedAtMixin, Base):
    """One grader's verdict on one sample: a score with its reasoning, or the error that prevented it."""

    __tablename__ = "grading_results"

    grader_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("graders.id", ondelete="CASCADE"))
    completion_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("completions.id", ondelete="CASCADE"), default=None
    )
    # "online" (sampled live traffic), "api" (grade calls from users and recipes)
    origin: Mapped[str] = mapped_column(String(20), default="api")
    score: Mapped[float | None] = mapped_column(Float, default=None)
    reasoning: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (Index("ix_grading_results_grader_completion", "grader_id", "completion_id"),)


class RemoteEnv(IdMixin, CreatedAtMixin, Base):
    """A registered reward server (the wire protocol calls it a remote environment)."""

    __tablename__ = "remote_envs"

    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[str] = mapped_column(String(100), default="")
    # ONLINE / OFFLINE, as last seen
    status: Mapped[str] = mapped_column(String(20), default="OFFLINE")
    metadata_schema: Mapped[dict | None] = mapped_column(default=None)


class Judge(IdMixin, CreatedAtMixin, Base):
    """A versioned LLM judge (the judges API); every update adds a version, the newest is current."""

    __tablename__ = "judges"

    use_case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(default=1)
    name: Mapped[str] = mapped_column(String(200))
    criteria: Mapped[str | None] = mapped_column(Text, default=None)
    # FAITHFULNESS / ANSWER_RELEVANCY / CONTEXT_RELEVANCY for a prebuilt judge
    prebuilt: Mapped[str | None] = mapped_column(String(40), default=None)
    examples: Mapped[list] = mapped_column(default=list)
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    metric_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("metrics.id", ondelete="RESTRICT"))
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    model: Mapped[Model] = relationship(lazy="joined")
    metric: Mapped[Metric] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("use_case_id", "key", "version"),)
