"""Compute pools and their harmony groups (one group per machine or cluster, with partitions)."""

from __future__ import annotations

import uuid

from sqlalchemy import ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from adaptive_engine.server.db.base import Base, CreatedAtMixin, IdMixin


class ComputePool(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "compute_pools"

    key: Mapped[str] = mapped_column(String(100), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # "local" (subprocesses on the server's machine) or "ray" (a Ray cluster)
    executor: Mapped[str] = mapped_column(String(20), default="local")
    address: Mapped[str | None] = mapped_column(Text, default=None)
    capabilities: Mapped[list] = mapped_column(default=list)

    harmony_groups: Mapped[list[HarmonyGroup]] = relationship(
        back_populates="compute_pool", cascade="all, delete-orphan", lazy="selectin", order_by="HarmonyGroup.key"
    )


class HarmonyGroup(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "harmony_groups"

    compute_pool_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("compute_pools.id", ondelete="CASCADE"), index=True)
    key: Mapped[str] = mapped_column(String(100), unique=True)
    # ONLINE / OFFLINE (wire enum HarmonyStatus)
    status: Mapped[str] = mapped_column(String(20), default="ONLINE")
    url: Mapped[str] = mapped_column(Text, default="")
    # GPUs in the group, and how many of them the inference partition holds (the rest run jobs).
    world_size: Mapped[int] = mapped_column(Integer, default=0)
    inference_partition: Mapped[int] = mapped_column(Integer, default=0)
    num_cpus: Mapped[int] = mapped_column(Integer, default=1)
    # Jobs that may run at once on the group's CPUs (GPU jobs are limited by the job partition too).
    job_slots: Mapped[int] = mapped_column(Integer, default=1)
    gpu_types: Mapped[str] = mapped_column(String(200), default="")

    compute_pool: Mapped[ComputePool] = relationship(back_populates="harmony_groups", lazy="joined")
