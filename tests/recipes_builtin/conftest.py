"""The bundled chat model as a plain transformers folder, converted once into the repo's build cache
(the same cache the inference tests use), shared by every training test."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE_ROOT = REPO / "build" / "test-cache" / "models"


@pytest.fixture(scope="session")
def base_model_dir() -> Path:
    from adaptive_engine.models_bundled import bundled_chat_model_dir

    return bundled_chat_model_dir(CACHE_ROOT)
