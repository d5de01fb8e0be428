"""Use cases and their shares with teams."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from adaptive_engine.server.db.base import Base, CreatedAtMixin, IdMixin
from adaptive_engine.server.db.models.identity import Role, Team


class UseCase(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "use_cases"

    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    # An archived use case keeps its data and stays readable, but takes no new traffic.
    is_archived: Mapped[bool] = mapped_column(default=False)
    # How the console shows it: {"emoji": "...", "gradient_color": "..."}.
    appearance: Mapped[dict] = mapped_column(default=dict)
    # {"default_metric": <metric id>}: the metric the console and reports open on.
    settings: Mapped[dict] = mapped_column(default=dict)

    shares: Mapped[list[UseCaseShare]] = relationship(
        back_populates="use_case", cascade="all, delete-orphan", lazy="selectin"
    )


class UseCaseShare(CreatedAtMixin, Base):
    __tablename__ = "use_case_shares"

    use_case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"))
    is_owner: Mapped[bool] = mapped_column(default=False)

    use_case: Mapped[UseCase] = relationship(back_populates="shares")
    team: Mapped[Team] = relationship(lazy="joined")
    role: Mapped[Role] = relationship(lazy="joined")
