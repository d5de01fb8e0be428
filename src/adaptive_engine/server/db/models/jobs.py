"""Recipes (user code), jobs that run them, their metrics and artifacts."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from adaptive_engine.server.db.base import Base, CreatedAtMixin, IdMixin
from adaptive_engine.server.db.models.identity import User
from adaptive_engine.server.db.models.use_cases import UseCase


class CustomRecipe(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "custom_recipes"

    # None for global (built-in) recipes, usable from every use case.
    use_case_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("use_cases.id", ondelete="CASCADE"), index=True, default=None
    )
    key: Mapped[str] = mapped_column(String(200), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    labels: Mapped[list] = mapped_column(default=list)
    # The entry point's source, shown to users.
    content: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    # Folder (relative to the data dir) holding the unpacked recipe, main.py at its root.
    path: Mapped[str] = mapped_column(Text)
    json_schema: Mapped[dict] = mapped_column(default=dict)
    # TRAINING / EVALUATION / … (wire enum JobKind) for the jobs that run it.
    job_kind: Mapped[str] = mapped_column(String(40), default="CUSTOM")
    builtin: Mapped[bool] = mapped_column(default=False)
    editable: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)

    created_by: Mapped[User | None] = relationship(lazy="joined")


class Job(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "jobs"

    name: Mapped[str] = mapped_column(String(200))
    # None for the jobs of the model registry (MODEL_CONVERSION), which belong to no use case and are
    # guarded by the global "model:register" permission instead.
    use_case_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("use_cases.id", ondelete="CASCADE"), index=True, default=None
    )
    recipe_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("custom_recipes.id", ondelete="SET NULL"), index=True, default=None
    )
    # Snapshot of the code that runs, so editing the recipe never changes a job.
    recipe_hash: Mapped[str] = mapped_column(String(64))
    recipe_path: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(String(40), default="CUSTOM")
    # PENDING / RUNNING / COMPLETED / FAILED / CANCELED (wire enum JobStatus)
    status: Mapped[str] = mapped_column(String(20), default="PENDING", index=True)
    args: Mapped[dict] = mapped_column(default=dict)
    # A credential the run needs (a model hub token): handed to its process in the environment, never shown.
    secret: Mapped[str | None] = mapped_column(Text, default=None)
    num_gpus: Mapped[int] = mapped_column(Integer, default=0)
    compute_pool_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("compute_pools.id", ondelete="SET NULL"), default=None
    )
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    progress_message: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # Which server process runs it, and the executor's handle (pid, Ray submission id).
    runner_id: Mapped[str | None] = mapped_column(String(200), default=None)
    executor: Mapped[str | None] = mapped_column(String(20), default=None)
    handle: Mapped[str | None] = mapped_column(String(200), default=None)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    ended_at: Mapped[datetime | None] = mapped_column(default=None)

    created_by: Mapped[User | None] = relationship(lazy="joined")
    use_case: Mapped[UseCase | None] = relationship(lazy="joined")
    recipe: Mapped[CustomRecipe | None] = relationship(lazy="joined")


class JobMetric(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "job_metrics"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    values: Mapped[dict] = mapped_column(default=dict)


class JobArtifact(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "job_artifacts"

    job_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    # EVALUATION / CUSTOM / DATASET / MODEL and PENDING / PROCESSING / READY / ERROR (wire enums)
    kind: Mapped[str] = mapped_column(String(20), default="CUSTOM")
    status: Mapped[str] = mapped_column(String(20), default="READY")
    # Relative to the data dir; None for artifacts that point elsewhere (a registered model).
    path: Mapped[str | None] = mapped_column(Text, default=None)
    uri: Mapped[str | None] = mapped_column(Text, default=None)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    artifact_metadata: Mapped[dict] = mapped_column(default=dict)
