"""The official client's models.* against our server."""

from __future__ import annotations

import pytest

adaptive_sdk = pytest.importorskip("adaptive_sdk")


@pytest.fixture
def official(server):  # noqa: ANN001, ANN201
    return adaptive_sdk.Adaptive(base_url=server.base_url, api_key=server.api_key)


def test_models_lifecycle(official, unique: str) -> None:  # noqa: ANN001
    official.use_cases.create(key=f"offm-{unique}")
    official.set_default_use_case(f"offm-{unique}")
    model = official.models.add_external(name=f"ext-{unique}", external_model_id="gpt-x", api_key="sk-1", provider="open_ai")
    assert model.is_external
    other = official.models.add_external(name=f"gem-{unique}", external_model_id="gemini", api_key="k", provider="google")
    assert model.key in [m.key for m in official.models.list()]
    assert official.models.get(model.key).id == model.id
    assert official.models.add_to_use_case(model.key) is True
    service = official.models.attach(other.key, wait=True, make_default=True)
    assert service.is_default and service.model.key == other.key
    service = official.models.deploy(model.key, make_default=True)
    assert service.is_default
    assert official.models.update(model.key, desired_online=False).desired_online is False
    updated = official.models.update_compute_config(model.key, {"maxSeqLen": 1024})
    assert updated.compute_config.max_seq_len == 1024
    assert official.models.detach(other.key, use_case=f"offm-{unique}") is True
    assert isinstance(official.models.terminate(model.key), str)
