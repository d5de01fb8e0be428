from __future__ import annotations

from pathlib import Path

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL, Rest
from adaptive_engine.sdk.types import JobArtifact

ARTIFACT_FIELDS = "id name kind status uri metadata sizeBytes createdAt"


class Artifacts(Resource[C]):
    """Files that jobs produced."""

    @operation
    def list(
        self, kinds: list[str] | None = None, job_id: str | None = None, use_case: str | None = None
    ) -> Returns[list[JobArtifact]]:
        """The artifacts of the use case's jobs, newest first (at most 1000); ``kinds`` (EVALUATION, DATASET,
        MODEL, CUSTOM) and ``job_id`` narrow them."""
        query = (
            f"query Artifacts($u: IdOrKey!, $f: ArtifactFilter) {{ artifacts(useCase: $u, filter: $f) "
            f"{{ {ARTIFACT_FIELDS} }} }}"
        )
        wire = {"kinds": kinds, "jobId": job_id}
        data = yield GraphQL(
            query, {"u": self.use_case_key(use_case), "f": {k: v for k, v in wire.items() if v is not None}}
        )
        return [JobArtifact.model_validate(a) for a in data["artifacts"]]

    @operation
    def get(self, artifact_id: str, use_case: str | None = None) -> Returns[JobArtifact]:
        """One artifact of the use case's jobs."""
        query = f"query Artifact($u: IdOrKey!, $id: UUID!) {{ artifact(useCase: $u, id: $id) {{ {ARTIFACT_FIELDS} }} }}"
        data = yield GraphQL(query, {"u": self.use_case_key(use_case), "id": artifact_id})
        return JobArtifact.model_validate(data["artifact"])

    @operation
    def download(self, artifact_id: str, destination_path: str) -> Returns[None]:
        """Download an artifact to ``destination_path``."""
        data = yield Rest("GET", f"/artifacts/{artifact_id}/download", raw=True)
        Path(destination_path).write_bytes(data)
