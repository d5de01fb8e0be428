"""Datasets (JSONL files under the data dir) and chunked upload sessions."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from adaptive_engine.server.db.base import Base, CreatedAtMixin, IdMixin


class Dataset(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "datasets"

    use_case_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("use_cases.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(200))
    # PROMPT / PROMPT_COMPLETION / PROMPT_COMPLETION_FEEDBACK / PREFERENCE (wire enum DatasetKind)
    kind: Mapped[str] = mapped_column(String(40))
    # UPLOADED / GENERATED / FILTERED (wire enum DatasetSource)
    source: Mapped[str] = mapped_column(String(20), default="UPLOADED")
    records: Mapped[int] = mapped_column(Integer, default=0)
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # Relative to the data dir.
    path: Mapped[str] = mapped_column(Text)
    # Feedback keys found in the rows: {metric_key: count}.
    feedback_keys: Mapped[dict] = mapped_column(default=dict)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"), default=None)
    # PROCESSING while a dataset from traffic is written in the background, then READY or FAILED (with error).
    status: Mapped[str] = mapped_column(String(20), default="READY", server_default="READY")
    processed_lines: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    total_lines: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(Text, default=None)

    __table_args__ = (UniqueConstraint("use_case_id", "key"),)


class UploadSession(IdMixin, CreatedAtMixin, Base):
    """A chunked upload: parts land under the data dir, then become a dataset in one step."""

    __tablename__ = "upload_sessions"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    content_type: Mapped[str | None] = mapped_column(String(200), default=None)
    upload_metadata: Mapped[dict] = mapped_column(default=dict)
    total_parts: Mapped[int] = mapped_column(Integer)
    received_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    # OPEN -> PENDING (being processed) -> DONE / ERROR; ABORTED
    status: Mapped[str] = mapped_column(String(20), default="OPEN")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    dataset_id: Mapped[uuid.UUID | None] = mapped_column(default=None, index=True)
    use_case_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    updated_at: Mapped[datetime | None] = mapped_column(default=None)
