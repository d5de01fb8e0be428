from __future__ import annotations

from pathlib import Path

from adaptive_engine.sdk._base import Resource, operation
from adaptive_engine.sdk._requests import Rest


class Artifacts(Resource):
    """Files that jobs produced."""

    @operation
    def download(self, artifact_id: str, destination_path: str):
        """Download an artifact to ``destination_path``."""
        data = yield Rest("GET", f"/artifacts/{artifact_id}/download", raw=True)
        Path(destination_path).write_bytes(data)
