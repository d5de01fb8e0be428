"""What a running job says to the server (used by the recipe runtime, not a public resource)."""

from __future__ import annotations

import json
from typing import Any

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import Rest


class JobRuntime(Resource[C]):
    @operation
    def report_progress(self, job_id: str, fraction: float, message: str | None = None) -> Returns[None]:
        yield Rest("POST", f"/jobs/{job_id}/progress", json={"progress": fraction, "message": message})

    @operation
    def log_metrics(self, job_id: str, step: int, values: dict[str, float]) -> Returns[None]:
        yield Rest("POST", f"/jobs/{job_id}/metrics", json={"step": step, "values": values})

    @operation
    def upload_artifact(
        self, job_id: str, name: str, data: bytes, kind: str = "CUSTOM", metadata: dict[str, Any] | None = None
    ) -> Returns[str]:
        body = yield Rest(
            "POST",
            f"/jobs/{job_id}/artifacts",
            params={"name": name, "kind": kind, "metadata": json.dumps(metadata or {})},
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        return str(body["id"])

    @operation
    def download_dataset(self, dataset: str, use_case: str | None = None) -> Returns[bytes]:
        data = yield Rest(
            "GET", f"/datasets/{dataset}/download", params={"use_case": self.use_case_key(use_case)}, raw=True
        )
        return bytes(data)

    @operation
    def register_model(self, job_id: str, spec: dict[str, Any]) -> Returns[dict[str, Any]]:
        body = yield Rest("POST", f"/jobs/{job_id}/models", json=spec)
        return dict(body)

    @operation
    def upload_model(self, job_id: str, spec: dict[str, Any], archive: bytes) -> Returns[dict[str, Any]]:
        """Send a model folder (zipped) from a job that runs away from the server, and register it."""
        params = {k: v for k, v in spec.items() if k not in ("path", "metadata") and v is not None}
        params["attach"] = str(bool(spec.get("attach", True))).lower()
        params["metadata"] = json.dumps(spec.get("metadata") or {})
        body = yield Rest(
            "POST",
            f"/jobs/{job_id}/models/upload",
            params=params,
            content=archive,
            headers={"Content-Type": "application/zip"},
        )
        return dict(body)
