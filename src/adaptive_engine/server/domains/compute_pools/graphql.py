"""GraphQL of compute pools and harmony groups."""

from __future__ import annotations

import enum
import uuid

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import authenticated, requires
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.domains.compute_pools import service
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
    row: strawberry.Private[orm.HarmonyGroup]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def key(self) -> str:
        return self.row.key

    @strawberry.field
    def compute_pool(self) -> ComputePoolRef | None:
        pool = self.row.compute_pool
        return ComputePoolRef(key=pool.key, name=pool.name)

    @strawberry.field
    def status(self) -> HarmonyStatus:
        return HarmonyStatus(self.row.status)

    @strawberry.field
    def url(self) -> str:
        return self.row.url

    @strawberry.field
    def world_size(self) -> int:
        return self.row.world_size

    @strawberry.field
    def gpu_types(self) -> str:
        return self.row.gpu_types

    @strawberry.field
    def num_cpus(self) -> int:
        return self.row.num_cpus

    @strawberry.field
    def job_slots(self) -> int:
        return self.row.job_slots

    @strawberry.field
    def inference_partition_size(self) -> int:
        return self.row.inference_partition

    @strawberry.field
    def job_partition_size(self) -> int:
        return self.row.world_size - self.row.inference_partition

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0

    @strawberry.field
    async def online_models(self, info: Info[Context, None]) -> list[ModelType]:
        if self.row.compute_pool.executor != "local":
            return []
        return [to_gql_model(ModelRecord.of(m)) for m in await service.online_local_models(info.context.session)]

    @strawberry.field
    async def gpu_allocations(self, info: Info[Context, None]) -> list[GpuAllocation] | None:
        """Running jobs holding GPUs, on ranks after the inference partition."""
        jobs = await service.running_gpu_jobs(info.context.session, self.row.compute_pool_id)
        given = info.context.platform.job_runner.gpu_ranks
        allocations, rank = [], self.row.inference_partition
        for job in jobs:
            # The ranks this server gave the job; for runs elsewhere (Ray), their place in the partition.
            ranks = given.get(job.id) or list(range(rank, min(rank + job.num_gpus, self.row.world_size)))
            rank += job.num_gpus
            allocations.append(
                GpuAllocation(
                    name=job.name,
                    num_gpus=job.num_gpus,
                    ranks=ranks,
                    created_at=epoch(job.started_at or job.created_at) or 0,
                    user_name=job.created_by.name if job.created_by else None,
                    job_id=str(job.id),
                )
            )
        return allocations


@strawberry.type(name="ComputePool")
class ComputePoolType:
    row: strawberry.Private[orm.ComputePool]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def key(self) -> str:
        return self.row.key

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0

    @strawberry.field
    def capabilities(self) -> list[ComputePoolCapability]:
        return [ComputePoolCapability(c) for c in self.row.capabilities]

    @strawberry.field
    def executor(self) -> str:
        return self.row.executor

    @strawberry.field
    def harmony_groups(self) -> list[HarmonyGroupType]:
        return [HarmonyGroupType(row=g) for g in self.row.harmony_groups]


@strawberry.input(name="ResizePartitionInput")
class ResizePartitionInput:
    harmony_group: IdOrKey
    size: int


@strawberry.type
class ComputePoolQuery:
    @strawberry.field(extensions=[authenticated()])
    async def compute_pools(self, info: Info[Context, None]) -> list[ComputePoolType]:
        ctx = info.context
        return [ComputePoolType(row=p) for p in await service.list_pools(ctx.session, ctx.principal)]

    @strawberry.field(extensions=[authenticated()])
    async def harmony_groups(self, info: Info[Context, None]) -> list[HarmonyGroupType]:
        ctx = info.context
        return [HarmonyGroupType(row=g) for g in await service.list_groups(ctx.session, ctx.principal)]


@strawberry.type
class ComputePoolMutation:
    @strawberry.mutation(extensions=[requires("compute_pool:manage")])
    async def resize_inference_partition(self, info: Info[Context, None], input: ResizePartitionInput) -> str:
        ctx = info.context
        group = await service.resize_inference_partition(ctx.session, ctx.principal, input.harmony_group, input.size)
        return f"inference partition of '{group.key}' is now {group.inference_partition} of {group.world_size} GPUs"
