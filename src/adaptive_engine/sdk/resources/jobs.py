from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Literal

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL, Rest, Sleep
from adaptive_engine.sdk.errors import APITimeoutError
from adaptive_engine.sdk.resources.recipes import RECIPE_FIELDS
from adaptive_engine.sdk.types import Job, JobPage

JOB_FIELDS = f"""
  id name status kind createdAt startedAt endedAt durationMs progress progressMessage error numGpus
  createdBy {{ id name email }}
  stages {{ name status progress message }}
  useCase {{ id key name }}
  recipe {{ {RECIPE_FIELDS} }}
  details {{ args recipeHash artifacts {{ id name kind status uri metadata sizeBytes createdAt }} }}
  metrics {{ step values createdAt }}
"""

# A job in one of these states changes no more.
JOB_FINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELED"})

JobKindName = Literal["TRAINING", "EVALUATION", "DATASET_GENERATION", "MODEL_CONVERSION", "CUSTOM"]


class Jobs(Resource[C]):
    """Jobs: runs of a recipe on a compute pool."""

    @operation
    def run(
        self,
        recipe_key: str,
        num_gpus: int,
        args: dict[str, Any] | None = None,
        name: str | None = None,
        use_case: str | None = None,
        compute_pool: str | None = None,
    ) -> Returns[Job]:
        """Start a recipe as a job. ``args`` are checked against the recipe's schema before anything
        starts; the job waits (PENDING) until the pool has room."""
        query = f"mutation CreateJob($input: JobInput!) {{ createJob(input: $input) {{ {JOB_FIELDS} }} }}"
        data = yield GraphQL(
            query,
            {
                "input": {
                    "recipe": recipe_key,
                    "useCase": self.use_case_key(use_case),
                    "args": args or {},
                    "name": name,
                    "computePool": compute_pool,
                    "numGpus": num_gpus,
                }
            },
        )
        return Job.model_validate(data["createJob"])

    @operation
    def get(self, job_id: str) -> Returns[Job]:
        """A job, with its progress, error, artifacts and metrics."""
        return (yield from self._get(job_id))

    def _get(self, job_id: str) -> Returns[Job]:
        query = f"query Job($id: UUID!) {{ job(id: $id) {{ {JOB_FIELDS} }} }}"
        data = yield GraphQL(query, {"id": str(job_id)})
        return Job.model_validate(data["job"])

    @operation
    def wait(
        self,
        job_id: str,
        timeout: float | None = None,
        poll_interval: float = 1.0,
        on_progress: Callable[[Job], None] | None = None,
    ) -> Returns[Job]:
        """Follow a job until it ends (COMPLETED, FAILED or CANCELED) and return it as it ended; the caller
        reads ``status`` and ``error``. ``on_progress(job)`` is called with each poll (progress, stage,
        metrics). Raises ``APITimeoutError`` when the job is still going after ``timeout`` seconds."""
        if poll_interval <= 0:
            raise ValueError("poll_interval must be positive")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = yield from self._get(job_id)
            if on_progress is not None:
                on_progress(job)
            if job.status in JOB_FINAL_STATUSES:
                return job
            if deadline is not None and time.monotonic() >= deadline:
                raise APITimeoutError(f"job {job_id} is still {job.status} after {timeout:g} s")
            yield Sleep(poll_interval)

    @operation
    def list(
        self,
        first: int | None = 100,
        last: int | None = None,
        after: str | None = None,
        before: str | None = None,
        kind: list[JobKindName] | None = None,
        use_case: str | None = None,
    ) -> Returns[JobPage]:
        """Jobs, newest first, in cursor pages (``first``/``after`` forwards, ``last``/``before`` backwards)."""
        if last is not None and first == 100:
            first = None
        use_case = use_case or self._client.default_use_case
        query = (
            "query Jobs($page: CursorPageInput!, $filter: ListJobsFilterInput) { jobs(page: $page, filter: $filter) {"
            " totalCount pageInfo { hasNextPage hasPreviousPage startCursor endCursor } nodes {"
            f" {JOB_FIELDS} }} }} }}"
        )
        variables = {
            "page": {"first": first, "last": last, "after": after, "before": before},
            "filter": {"useCase": use_case, "kind": list(kind) if kind else None},
        }
        data = yield GraphQL(query, variables)
        return JobPage.model_validate(data["jobs"])

    @operation
    def cancel(self, job_id: str) -> Returns[Job]:
        """Cancel a pending or running job (its processes are stopped)."""
        query = f"mutation CancelJob($id: UUID!) {{ cancelJob(id: $id) {{ {JOB_FIELDS} }} }}"
        data = yield GraphQL(query, {"id": str(job_id)})
        return Job.model_validate(data["cancelJob"])

    @operation
    def logs(self, job_id: str, tail: int = 200) -> Returns[str]:
        """The last lines of a job's log (also while it runs)."""
        data = yield Rest("GET", f"/jobs/{job_id}/logs", params={"tail": tail}, raw=True)
        return bytes(data).decode("utf-8", errors="replace")
