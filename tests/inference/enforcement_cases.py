"""Permission table rows of the inference routes this folder adds (chat, completions and embeddings have
theirs in tests/identity/enforcement_cases_models.py, with the models they call)."""

from __future__ import annotations

from adaptive_engine.sdk.errors import ConflictError, ServerError, ValidationError
from tests.enforcement import Case, rest

CASES = [
    # Any caller lists; the list holds only what the caller may use (tests/inference/test_gateway_names.py).
    Case(
        ("GET /api/v1/models",),
        op=lambda c, w: rest(c, "GET", "/models"),
        allowed_as=("viewer", "outsider", "editor"),
        denied_as=(),
    ),
    # Retrieving a name checks inference:run on the use case it names (the model is attached by the models rows).
    Case(
        ("GET /api/v1/models/{name:path}",),
        on_use_case=lambda c, w, uc: rest(c, "GET", f"/models/{uc}/attached-{w.suffix}"),
    ),
]

CASES += [
    # The model registry's right (like updateModelComputeConfig); "reg-…" is registered by the models rows.
    Case(
        ("Mutation.update_model_gateway_config",),
        op=lambda c, w: c.models.update_gateway_config(f"reg-{w.suffix}", max_retries=1),
        snapshot=lambda a, w: a.models.get(f"reg-{w.suffix}").gateway_config,
    ),
]

CASES += [
    # Like chat: inference:run on the use case the model names (the attached model's endpoint is unreachable).
    Case(
        ("POST /api/v1/responses",),
        on_use_case=lambda c, w, uc: rest(
            c, "POST", "/responses", json={"model": f"{uc}/attached-{w.suffix}", "input": "hi"}
        ),
        allowed_as=("editor",),
        denied_as=("viewer",),
        allowed_errors=(ServerError, ValidationError, ConflictError),
    ),
]
