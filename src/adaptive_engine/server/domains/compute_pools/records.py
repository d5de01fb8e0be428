"""What the compute pools domain hands its readers: plain values built from the rows in one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from adaptive_engine.server.db.models import ComputePool, HarmonyGroup


@dataclass(frozen=True, slots=True)
class HarmonyGroupRecord:
    id: uuid.UUID
    key: str
    compute_pool_id: uuid.UUID
    pool_key: str
    pool_name: str
    executor: str
    status: str
    url: str
    world_size: int
    inference_partition: int
    num_cpus: int
    job_slots: int
    gpu_types: str
    created_at: datetime

    @classmethod
    def of(cls, group: HarmonyGroup) -> HarmonyGroupRecord:
        pool = group.compute_pool
        return cls(
            id=group.id,
            key=group.key,
            compute_pool_id=group.compute_pool_id,
            pool_key=pool.key,
            pool_name=pool.name,
            executor=pool.executor,
            status=group.status,
            url=group.url,
            world_size=group.world_size,
            inference_partition=group.inference_partition,
            num_cpus=group.num_cpus,
            job_slots=group.job_slots,
            gpu_types=group.gpu_types,
            created_at=group.created_at,
        )


@dataclass(frozen=True, slots=True)
class ComputePoolRecord:
    id: uuid.UUID
    key: str
    name: str
    executor: str
    capabilities: tuple[str, ...]
    created_at: datetime
    harmony_groups: tuple[HarmonyGroupRecord, ...]

    @classmethod
    def of(cls, pool: ComputePool) -> ComputePoolRecord:
        return cls(
            id=pool.id,
            key=pool.key,
            name=pool.name,
            executor=pool.executor,
            capabilities=tuple(pool.capabilities),
            created_at=pool.created_at,
            harmony_groups=tuple(HarmonyGroupRecord.of(g) for g in pool.harmony_groups),
        )


@dataclass(frozen=True, slots=True)
class GpuAllocationRecord:
    """A running job's hold on GPUs of a harmony group."""

    job_id: uuid.UUID
    name: str
    num_gpus: int
    ranks: tuple[int, ...]
    started_at: datetime
    user_name: str | None
