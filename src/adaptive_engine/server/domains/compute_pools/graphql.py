"""GraphQL of compute pools and harmony groups."""

from __future__ import annotations

import enum
import uuid

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import authenticated, requires
from adaptive_engine.server.domains.compute_pools import service
from adaptive_engine.server.domains.compute_pools.records import (
    ComputePoolRecord,
    GpuAllocationRecord,
    HarmonyGroupRecord,
)
from adaptive_engine.server.domains.models.records import ModelRecord
from adaptive_engine.server.domains.models.types import ModelType, to_gql_model
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.scalars import IdOrKey
from adaptive_engine.server.timestamps import epoch


@strawberry.enum(name="ComputePoolCapability")
class ComputePoolCapability(enum.Enum):
    INFERENCE = "INFERENCE"
    JOB = "JOB"


@strawberry.enum(name="HarmonyStatus")
class HarmonyStatus(enum.Enum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"


@strawberry.type(name="ComputePoolRef")
class ComputePoolRef:
    key: str
    name: str


@strawberry.type(name="GpuAllocation")
class GpuAllocation:
    name: str
    num_gpus: int
    ranks: list[int]
    created_at: int
    user_name: str | None
    job_id: str


@strawberry.type(name="HarmonyGroup")
class HarmonyGroupType:
    id: uuid.UUID
    key: str
    compute_pool: ComputePoolRef | None
    status: HarmonyStatus
    url: str
    world_size: int
    gpu_types: str
    num_cpus: int
    job_slots: int
    inference_partition_size: int
    job_partition_size: int
    created_at: int
    record: strawberry.Private[HarmonyGroupRecord]

    @strawberry.field
    async def online_models(self, info: Info[Context, None]) -> list[ModelType]:
        if self.record.executor != service.LOCAL:
            return []
        return [to_gql_model(ModelRecord.of(m)) for m in await service.online_local_models(info.context.session)]

    @strawberry.field
    async def gpu_allocations(self, info: Info[Context, None]) -> list[GpuAllocation] | None:
        """Running jobs holding GPUs, on ranks after the inference partition."""
        given = info.context.platform.job_runner.gpu_ranks
        return [
            to_gql_gpu_allocation(a) for a in await service.gpu_allocations(info.context.session, self.record, given)
        ]


def to_gql_gpu_allocation(allocation: GpuAllocationRecord) -> GpuAllocation:
    return GpuAllocation(
        name=allocation.name,
        num_gpus=allocation.num_gpus,
        ranks=list(allocation.ranks),
        created_at=epoch(allocation.started_at) or 0,
        user_name=allocation.user_name,
        job_id=str(allocation.job_id),
    )


def to_gql_harmony_group(group: HarmonyGroupRecord) -> HarmonyGroupType:
    return HarmonyGroupType(
        id=group.id,
        key=group.key,
        compute_pool=ComputePoolRef(key=group.pool_key, name=group.pool_name),
        status=HarmonyStatus(group.status),
        url=group.url,
        world_size=group.world_size,
        gpu_types=group.gpu_types,
        num_cpus=group.num_cpus,
        job_slots=group.job_slots,
        inference_partition_size=group.inference_partition,
        job_partition_size=group.world_size - group.inference_partition,
        created_at=epoch(group.created_at) or 0,
        record=group,
    )


@strawberry.type(name="ComputePool")
class ComputePoolType:
    id: uuid.UUID
    key: str
    name: str
    created_at: int
    capabilities: list[ComputePoolCapability]
    executor: str
    harmony_groups: list[HarmonyGroupType]


def to_gql_compute_pool(pool: ComputePoolRecord) -> ComputePoolType:
    return ComputePoolType(
        id=pool.id,
        key=pool.key,
        name=pool.name,
        created_at=epoch(pool.created_at) or 0,
        capabilities=[ComputePoolCapability(c) for c in pool.capabilities],
        executor=pool.executor,
        harmony_groups=[to_gql_harmony_group(g) for g in pool.harmony_groups],
    )


@strawberry.input(name="ResizePartitionInput")
class ResizePartitionInput:
    harmony_group: IdOrKey
    size: int


@strawberry.type
class ComputePoolQuery:
    @strawberry.field(extensions=[authenticated()])
    async def compute_pools(self, info: Info[Context, None]) -> list[ComputePoolType]:
        ctx = info.context
        return [to_gql_compute_pool(p) for p in await service.list_pools(ctx.session, ctx.principal)]

    @strawberry.field(extensions=[authenticated()])
    async def harmony_groups(self, info: Info[Context, None]) -> list[HarmonyGroupType]:
        ctx = info.context
        return [to_gql_harmony_group(g) for g in await service.list_groups(ctx.session, ctx.principal)]


@strawberry.type
class ComputePoolMutation:
    @strawberry.mutation(extensions=[requires("compute_pool:manage")])
    async def resize_inference_partition(self, info: Info[Context, None], input: ResizePartitionInput) -> str:
        ctx = info.context
        group = await service.resize_inference_partition(ctx.session, ctx.principal, input.harmony_group, input.size)
        return f"inference partition of '{group.key}' is now {group.inference_partition} of {group.world_size} GPUs"
