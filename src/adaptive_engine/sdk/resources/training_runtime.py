"""What a running training or evaluation job asks the server (used by the built-in recipes, not public)."""

from __future__ import annotations

from typing import Any

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import Rest


class TrainingRuntime(Resource[C]):
    @operation
    def model_weights(self, job_id: str, model: str) -> Returns[dict[str, Any]]:
        """Where ``model``'s weights are on the server's machine: {"format": gguf|transformers|adapter, ...}."""
        return dict((yield Rest("GET", f"/jobs/{job_id}/model-weights/{model}")))

    @operation
    def record_evaluation(self, job_id: str, completions: list[dict[str, Any]]) -> Returns[list[str]]:
        """Store evaluation completions (interaction bodies with inline feedbacks) with source EVALUATION."""
        body = yield Rest("POST", f"/jobs/{job_id}/evaluation-completions", json=completions)
        return [str(i) for i in body["completion_ids"]]
