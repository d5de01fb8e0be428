"""Models in the registry and their attachment to use cases (model services)."""

from __future__ import annotations

import uuid

from sqlalchemy import BigInteger, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from adaptive_engine.server.db.base import Base, CreatedAtMixin, IdMixin


class Model(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "models"

    key: Mapped[str] = mapped_column(String(200), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # "chat" or "embedding"
    kind: Mapped[str] = mapped_column(String(20), default="chat")
    # "local", "open_ai", "azure", "google"
    provider: Mapped[str] = mapped_column(String(20), default="local")
    is_external: Mapped[bool] = mapped_column(default=False)
    is_adapter: Mapped[bool] = mapped_column(default=False)
    is_training: Mapped[bool] = mapped_column(default=False)
    backbone_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"), default=None)
    # How the backend finds the weights or the endpoint: {"gguf_package": ...}, {"path": ...},
    # {"endpoint": ..., "external_model_id": ..., "api_version": ...}.
    source: Mapped[dict] = mapped_column(default=dict)
    # Provider API key for external models: stored, never returned by the API.
    secret: Mapped[str | None] = mapped_column(Text, default=None)
    # ONLINE / PENDING / OFFLINE / ERROR, as the wire enum ModelOnline.
    status: Mapped[str] = mapped_column(String(20), default="OFFLINE")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    size: Mapped[int | None] = mapped_column(BigInteger, default=None)
    compute_config: Mapped[dict] = mapped_column(default=dict)
    # Where a trained model came from: base model, recipe, job, dataset or feedback filter.
    lineage: Mapped[dict] = mapped_column(default=dict)
    # Catalogue flags set by updateModel: published models are offered to every team, stable ones are
    # recommended for production.
    is_published: Mapped[bool] = mapped_column(default=False)
    is_stable: Mapped[bool] = mapped_column(default=False)
    # Dollars per million tokens: prompt, completion, and prompt tokens served from the provider's cache.
    price_input: Mapped[float] = mapped_column(Float, default=0.0)
    price_output: Mapped[float] = mapped_column(Float, default=0.0)
    price_cached_input: Mapped[float] = mapped_column(Float, default=0.0)

    backbone: Mapped[Model | None] = relationship(remote_side="Model.id", lazy="joined", join_depth=1)
    services: Mapped[list[ModelService]] = relationship(back_populates="model", cascade="all, delete-orphan")


class ModelService(IdMixin, CreatedAtMixin, Base):
    """A model attached to a use case."""

    __tablename__ = "model_services"

    use_case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), index=True)
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), index=True)
    is_default: Mapped[bool] = mapped_column(default=False)
    desired_online: Mapped[bool] = mapped_column(default=True)
    placement: Mapped[dict] = mapped_column(default=dict)
    # The service's display name (None: the model's name).
    name: Mapped[str | None] = mapped_column(String(200), default=None)
    # Applied as the system message of chat requests that bring none.
    system_prompt_template_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("system_prompt_templates.id", ondelete="SET NULL"), default=None
    )

    model: Mapped[Model] = relationship(back_populates="services", lazy="joined")
    system_prompt_template: Mapped[SystemPromptTemplate | None] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("use_case_id", "model_id"),)


class SystemPromptTemplate(IdMixin, CreatedAtMixin, Base):
    """One version of a system prompt. Deriving a template adds a version to its family; versions are
    never edited, so an interaction's template id always names the text it was served with."""

    __tablename__ = "system_prompt_templates"

    name: Mapped[str] = mapped_column(String(200))
    template: Mapped[str] = mapped_column(Text)
    # The {{name}} placeholders of the template, filled from the request's labels.
    arguments: Mapped[list] = mapped_column(default=list)
    # The first version's id (its own for the first), and this one's number in the family (1, 2, ...).
    family_id: Mapped[uuid.UUID] = mapped_column(index=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
