"""Compute pools: the machine's own ("local") and, when configured, a Ray cluster ("ray").

Each pool has harmony groups (a machine or a cluster) whose GPUs are split between an inference
partition and a job partition; jobs may use only the job partition.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.config import Settings
from adaptive_engine.server.db.lookup import find_by_id_or_key
from adaptive_engine.server.db.models import ComputePool, HarmonyGroup, Job, Model
from adaptive_engine.server.domains.compute_pools.records import (
    ComputePoolRecord,
    GpuAllocationRecord,
    HarmonyGroupRecord,
)
from adaptive_engine.server.errors import Conflict, InvalidInput, NotFound

LOCAL = "local"
RAY = "ray"
ACTIVE = ("RUNNING",)


@dataclass(frozen=True)
class Machine:
    cpus: int
    gpus: int
    gpu_types: str


def detect_machine() -> Machine:
    """CPUs and NVIDIA GPUs of this machine (nvidia-smi, when present)."""
    cpus = os.cpu_count() or 1
    names: list[str] = []
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(
                ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True, timeout=10
            )
            if out.returncode == 0:
                names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
        except (OSError, subprocess.SubprocessError):
            names = []
    return Machine(cpus=cpus, gpus=len(names), gpu_types=", ".join(sorted(set(names))))


async def _ensure(
    session: AsyncSession, key: str, name: str, executor: str, address: str | None, group: dict[str, object]
) -> ComputePool:
    pool = (await session.execute(select(ComputePool).where(ComputePool.key == key))).scalar_one_or_none()
    if pool is None:
        pool = ComputePool(key=key, name=name, executor=executor, address=address, capabilities=["INFERENCE", "JOB"])
        session.add(pool)
        await session.flush()
    pool.address = address
    group_key = f"{key}-0"
    found = (await session.execute(select(HarmonyGroup).where(HarmonyGroup.key == group_key))).scalar_one_or_none()
    if found is None:
        found = HarmonyGroup(compute_pool_id=pool.id, key=group_key, inference_partition=0)
        session.add(found)
    for attr, value in group.items():
        setattr(found, attr, value)
    # Capacity may have changed since the last start: the inference partition never exceeds it.
    found.inference_partition = min(found.inference_partition or 0, found.world_size)
    found.status = "ONLINE"
    await session.flush()
    return pool


async def ensure_pools(session: AsyncSession, settings: Settings, machine: Machine) -> None:
    """Create or refresh the pools this server runs jobs on."""
    slots = settings.local_job_slots or max(1, machine.cpus // 2)
    await _ensure(
        session,
        LOCAL,
        "Local machine",
        "local",
        None,
        {
            "url": settings.resolved_callback_url,
            "world_size": machine.gpus,
            "num_cpus": machine.cpus,
            "job_slots": slots,
            "gpu_types": machine.gpu_types,
        },
    )
    if settings.ray_address:
        await _ensure(
            session,
            RAY,
            "Ray cluster",
            "ray",
            settings.ray_address,
            {
                "url": settings.ray_address,
                "world_size": settings.ray_num_gpus,
                "num_cpus": 0,
                "job_slots": 10_000,
                "gpu_types": "",
            },
        )
    else:
        ray_group = (
            await session.execute(select(HarmonyGroup).where(HarmonyGroup.key == f"{RAY}-0"))
        ).scalar_one_or_none()
        if ray_group is not None:
            ray_group.status = "OFFLINE"


async def list_pools(session: AsyncSession, principal: Principal) -> list[ComputePoolRecord]:
    rows = await session.execute(select(ComputePool).order_by(ComputePool.created_at, ComputePool.key))
    return [ComputePoolRecord.of(p) for p in rows.scalars()]


async def list_groups(session: AsyncSession, principal: Principal) -> list[HarmonyGroupRecord]:
    rows = await session.execute(select(HarmonyGroup).order_by(HarmonyGroup.key))
    return [HarmonyGroupRecord.of(g) for g in rows.unique().scalars()]


async def get_pool(session: AsyncSession, id_or_key: str | None) -> ComputePool:
    pool = await find_by_id_or_key(session, ComputePool, id_or_key or LOCAL)
    if pool is None:
        raise NotFound(f"compute pool '{id_or_key}' not found")
    await session.refresh(pool, ["harmony_groups"])
    return pool


async def gpus_in_use(session: AsyncSession, pool: ComputePool) -> int:
    used = await session.execute(
        select(func.coalesce(func.sum(Job.num_gpus), 0)).where(Job.compute_pool_id == pool.id, Job.status.in_(ACTIVE))
    )
    return int(used.scalar_one())


async def running_gpu_jobs(session: AsyncSession, pool_id: uuid.UUID) -> list[Job]:
    """The pool's running jobs that hold GPUs, in the order they started."""
    query = (
        select(Job)
        .where(Job.compute_pool_id == pool_id, Job.status == "RUNNING", Job.num_gpus > 0)
        .order_by(Job.started_at, Job.id)
    )
    return list((await session.execute(query)).scalars())


async def gpu_allocations(
    session: AsyncSession, group: HarmonyGroupRecord, given: Mapping[uuid.UUID, Sequence[int]]
) -> list[GpuAllocationRecord]:
    """Running jobs holding GPUs, on ranks after the inference partition. ``given``: the ranks this server's
    runner gave each job; for runs elsewhere (Ray), a job's place in the partition stands for them."""
    allocations, rank = [], group.inference_partition
    for job in await running_gpu_jobs(session, group.compute_pool_id):
        ranks = given.get(job.id) or range(rank, min(rank + job.num_gpus, group.world_size))
        rank += job.num_gpus
        allocations.append(
            GpuAllocationRecord(
                job_id=job.id,
                name=job.name,
                num_gpus=job.num_gpus,
                ranks=tuple(ranks),
                started_at=job.started_at or job.created_at,
                user_name=job.created_by.name if job.created_by else None,
            )
        )
    return allocations


async def online_local_models(session: AsyncSession) -> list[Model]:
    """The models this machine serves now (what a local pool's inference partition holds)."""
    query = select(Model).where(Model.status == "ONLINE", Model.is_external.is_(False)).order_by(Model.key)
    return list((await session.execute(query)).scalars())


def job_gpus(pool: ComputePool) -> int:
    """GPUs of the pool's job partitions (online groups only)."""
    return sum(g.world_size - g.inference_partition for g in pool.harmony_groups if g.status == "ONLINE")


async def resize_inference_partition(
    session: AsyncSession, principal: Principal, group_key: str, size: int
) -> HarmonyGroupRecord:
    principal.require_global("compute_pool:manage")
    group = await find_by_id_or_key(session, HarmonyGroup, group_key)
    if group is None:
        raise NotFound(f"harmony group '{group_key}' not found")
    if size < 0:
        raise InvalidInput("size must be 0 or more GPUs")
    if size > group.world_size:
        raise InvalidInput(f"size {size} exceeds the capacity of harmony group '{group.key}' ({group.world_size} GPUs)")
    pool = await get_pool(session, str(group.compute_pool_id))
    siblings = await session.execute(
        select(HarmonyGroup).where(HarmonyGroup.compute_pool_id == pool.id, HarmonyGroup.id != group.id)
    )
    others = sum(g.world_size - g.inference_partition for g in siblings.scalars() if g.status == "ONLINE")
    in_use = await gpus_in_use(session, pool)
    if others + group.world_size - size < in_use:
        raise Conflict(
            f"running jobs hold {in_use} GPUs of pool '{pool.key}'; the job partition cannot shrink below that"
        )
    group.inference_partition = size
    await session.flush()
    return HarmonyGroupRecord.of(group)
