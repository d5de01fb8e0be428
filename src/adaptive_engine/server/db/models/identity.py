"""Users, teams, roles, memberships and API keys."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from adaptive_engine.server.db.base import Base, CreatedAtMixin, IdMixin


class User(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "users"

    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    memberships: Mapped[list[TeamMember]] = relationship(back_populates="user", cascade="all, delete-orphan")


class Team(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "teams"

    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))


class Role(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "roles"

    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    permissions: Mapped[list] = mapped_column(default=list)
    builtin: Mapped[bool] = mapped_column(default=False)


class TeamMember(CreatedAtMixin, Base):
    __tablename__ = "team_members"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    role_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("roles.id", ondelete="RESTRICT"))

    user: Mapped[User] = relationship(back_populates="memberships")
    team: Mapped[Team] = relationship(lazy="joined")
    role: Mapped[Role] = relationship(lazy="joined")


class ApiKey(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "api_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # First characters of the key, shown to users to tell keys apart; the key itself is never stored.
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    # Keys minted for a job are scoped to it and revoked when it ends.
    job_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    # Optional scope, enforced on the data plane: refused after this time; only these model keys; only
    # these use cases (None: no restriction).
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    allowed_models: Mapped[list | None] = mapped_column(default=None)
    use_case_ids: Mapped[list | None] = mapped_column(default=None)

    user: Mapped[User] = relationship(lazy="joined")

    __table_args__ = (UniqueConstraint("prefix", "key_hash"),)
