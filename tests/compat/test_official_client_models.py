"""The official client's models.* against our server."""

from __future__ import annotations

import pytest

adaptive_sdk = pytest.importorskip("adaptive_sdk")


@pytest.fixture
def official(server):
    return adaptive_sdk.Adaptive(base_url=server.base_url, api_key=server.api_key)


def test_models_lifecycle(official, unique: str) -> None:
    official.use_cases.create(key=f"offm-{unique}")
    official.set_default_use_case(f"offm-{unique}")
    model = official.models.add_external(
        name=f"ext-{unique}", external_model_id="gpt-x", api_key="sk-1", provider="open_ai"
    )
    assert model.is_external
    other = official.models.add_external(
        name=f"gem-{unique}", external_model_id="gemini", api_key="k", provider="google"
    )
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


def test_import_hf_model_through_the_official_operation(official, server, unique: str, tmp_path, monkeypatch) -> None:
    """The official ``models.add_hf_model`` refuses every id outside a list hard-coded in the client (so it
    cannot name a model folder, and this machine cannot reach the hub): the folder import sends the client's
    own generated ``AddHFModel`` operation, which is what that method sends once its check passes."""
    from adaptive_sdk.graphql_client import AddHFModelInput
    from adaptive_sdk.graphql_client.enums import JobKind

    from adaptive_engine import Adaptive
    from tests.jobs.helpers import wait_for
    from tests.models.support import tiny_llama_folder

    ours = Adaptive(server.base_url, api_key=server.api_key)
    folder = tiny_llama_folder(tmp_path / "tiny")
    key = f"offhf-{unique}"
    job = official._gql_client.add_hf_model(
        AddHFModelInput(modelId=str(folder), outputModelName=f"Off {unique}", outputModelKey=key, hfToken="")
    ).import_hf_model
    assert job.kind == JobKind.MODEL_CONVERSION and job.use_case is None
    assert wait_for(ours, str(job.id)).status == "COMPLETED"
    assert official.jobs.get(str(job.id)).status.value == "COMPLETED"
    assert official.models.get(key).key == key
    # An id of the client's list goes through its own method; offline, the job fails with the reason.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    hub = official.models.add_hf_model("meta-llama/Llama-3.1-8B", "Llama", f"offhub-{unique}", hf_token="hf_x")
    assert hub.kind == JobKind.MODEL_CONVERSION
    failed = wait_for(ours, str(hub.id))
    assert (
        failed.status == "FAILED"
        and "could not reach the model hub to download meta-llama/Llama-3.1-8B" in failed.error
    )
    ours.close()
