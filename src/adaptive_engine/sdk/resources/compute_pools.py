from __future__ import annotations

import builtins

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL
from adaptive_engine.sdk.errors import APIError
from adaptive_engine.sdk.types import ComputePool, ResizeResult

POOL_FIELDS = """
  id key name createdAt capabilities executor
  harmonyGroups {
    id key computePool { key name } status url worldSize gpuTypes numCpus jobSlots inferencePartitionSize
    jobPartitionSize createdAt
    onlineModels { id key name online error isExternal providerName isAdapter isTraining createdAt size }
    gpuAllocations { name numGpus ranks createdAt userName jobId }
  }
"""


class ComputePools(Resource[C]):
    """Compute pools: where models are served and jobs run."""

    @operation
    def list(self) -> Returns[list[ComputePool]]:
        """Every compute pool with its harmony groups, capacity and partitions."""
        data = yield GraphQL(f"query ComputePools {{ computePools {{ {POOL_FIELDS} }} }}")
        return [ComputePool.model_validate(p) for p in data["computePools"]]

    @operation
    def resize_inference_partition(self, compute_pool_key: str, size: int) -> Returns[builtins.list[ResizeResult]]:
        """Give ``size`` GPUs of each online harmony group of the pool to inference (the rest run jobs).
        The server checks the size against each group's capacity; one result per group."""
        data = yield GraphQL(f"query ComputePools {{ computePools {{ {POOL_FIELDS} }} }}")
        pool = next((p for p in data["computePools"] if p["key"] == compute_pool_key), None)
        if pool is None:
            raise ValueError(f"compute pool '{compute_pool_key}' not found")
        results: builtins.list[ResizeResult] = []
        mutation = "mutation Resize($input: ResizePartitionInput!) { resizeInferencePartition(input: $input) }"
        for group in pool["harmonyGroups"]:
            if group["status"] != "ONLINE":
                continue
            try:
                yield GraphQL(mutation, {"input": {"harmonyGroup": group["key"], "size": size}})
                results.append(ResizeResult(harmony_group_key=group["key"], success=True))
            except APIError as error:
                results.append(ResizeResult(harmony_group_key=group["key"], success=False, error=error.message))
        return results
