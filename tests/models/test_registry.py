from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk.errors import ConflictError, NotFoundError, ValidationError


def _external(client: Adaptive, unique: str, name: str, provider: str = "open_ai", **extra):
    return client.models.add_external(
        name=name,
        key=f"{name}-{unique}",
        external_model_id="gpt-test",
        api_key=f"sk-secret-{unique}",
        provider=provider,
        **extra,
    )


def test_add_external_models_and_list(client: Adaptive, unique: str) -> None:
    openai = _external(client, unique, "oai", endpoint="http://127.0.0.1:9/v1")
    google = _external(client, unique, "gem", provider="google")
    azure = _external(client, unique, "az", provider="azure", endpoint="https://res.openai.azure.com")
    assert openai.is_external and openai.online == "ONLINE" and openai.provider_name == "OPEN_AI"
    assert google.provider_name == "GOOGLE"
    assert azure.provider == "azure" and azure.provider_name == "OPEN_AI"
    keys = {m.key for m in client.models.list()}
    assert {openai.key, google.key, azure.key} <= keys
    assert client.models.get(openai.key).id == openai.id
    online = {m.key for m in client.models.list(filter={"online": ["ONLINE"], "kind": "chat"})}
    assert openai.key in online
    assert openai.key not in {m.key for m in client.models.list(filter={"kind": "embedding"})}


def test_api_keys_are_never_returned(server, client: Adaptive, unique: str) -> None:
    _external(client, unique, "hidden")
    schema = httpx.post(
        f"{server.base_url}/api/graphql",
        headers={"Authorization": f"Bearer {server.api_key}"},
        json={"query": '{ __type(name: "Model") { fields { name } } }'},
    ).json()
    fields = {f["name"] for f in schema["data"]["__type"]["fields"]}
    assert not fields & {"secret", "apiKey", "api_key"}
    everything = json.dumps([m.model_dump() for m in client.models.list()])
    assert f"sk-secret-{unique}" not in everything


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"provider": "cohere"}, ValueError),
        ({"provider": "azure"}, ValueError),  # no endpoint
        ({"provider": "open_ai", "endpoint": "ftp://x"}, ValidationError),
        ({"provider": "open_ai", "external_model_id": ""}, ValidationError),
        ({"provider": "open_ai", "name": "   "}, ValidationError),
    ],
)
def test_bad_external_models_are_rejected(client: Adaptive, unique: str, kwargs: dict, error: type) -> None:
    before = len(client.models.list())
    args = {"name": "bad", "key": f"bad-{unique}", "external_model_id": "m", "api_key": "k", **kwargs}
    with pytest.raises(error):
        client.models.add_external(**args)
    assert len(client.models.list()) == before


def test_duplicate_and_unknown_models(client: Adaptive, unique: str) -> None:
    _external(client, unique, "dup")
    with pytest.raises(ConflictError):
        _external(client, unique, "dup")
    with pytest.raises(NotFoundError):
        client.models.get(f"missing-{unique}")
    client.use_cases.create(key=f"uc-{unique}")
    with pytest.raises(NotFoundError):
        client.models.attach(f"missing-{unique}", use_case=f"uc-{unique}")
    with pytest.raises(NotFoundError):
        client.models.attach(f"dup-{unique}", use_case=f"missing-uc-{unique}")


def test_attach_default_update_detach(client: Adaptive, unique: str) -> None:
    client.use_cases.create(key=f"att-{unique}")
    client.set_default_use_case(f"att-{unique}")
    first = _external(client, unique, "first")
    second = _external(client, unique, "second")
    assert client.models.add_to_use_case(first.key) is True
    service = client.models.deploy(second.key, wait=True)
    assert service.desired_online and service.model.online == "ONLINE"
    services = {s.key: s for s in client.use_cases.get().model_services}
    assert services[first.key].is_default and not services[second.key].is_default

    promoted = client.models.update(second.key, is_default=True)
    assert promoted.is_default
    services = {s.key: s for s in client.use_cases.get().model_services}
    assert not services[first.key].is_default  # only one default per use case

    client.models.update(second.key, desired_online=False)
    assert not {s.key: s for s in client.use_cases.get().model_services}[second.key].desired_online
    assert client.models.detach(first.key) is True
    assert first.key not in {s.key for s in client.use_cases.get().model_services}
    with pytest.raises(NotFoundError):
        client.models.detach(first.key)
    assert f"att-{unique}" in {u.key for u in client.models.get(second.key).use_cases}


def test_terminate_needs_force_when_shared(client: Adaptive, unique: str) -> None:
    model = _external(client, unique, "shared")
    for name in ("a", "b"):
        client.use_cases.create(key=f"{name}-{unique}")
        client.models.deploy(model.key, use_case=f"{name}-{unique}")
    with pytest.raises(ConflictError):
        client.models.terminate(model.key)
    assert all(s.desired_online for s in client.use_cases.get(f"a-{unique}").model_services)
    client.models.terminate(model.key, force=True)
    assert not any(s.desired_online for s in client.use_cases.get(f"a-{unique}").model_services)


def test_compute_config(client: Adaptive, unique: str) -> None:
    model = _external(client, unique, "cc")
    updated = client.models.update_compute_config(model.key, {"max_seq_len": 4096, "tp": 1})
    assert updated.compute_config.max_seq_len == 4096 and updated.compute_config.tp == 1
    with pytest.raises(ValidationError):
        client.models.update_compute_config(model.key, {"tp": 0})
    # Tensor parallelism is vLLM's: this server (the local backend) refuses it rather than store it for nothing.
    with pytest.raises(ValidationError, match="tp above 1 needs the vLLM backend"):
        client.models.update_compute_config(model.key, {"tp": 2, "max_seq_len": 2048})
    assert client.models.get(model.key).compute_config.max_seq_len == 4096


def test_add_local_model_folder(client: Adaptive, unique: str, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"0" * 128)
    model = client.models.add_local(str(tmp_path), name="local", key=f"local-{unique}")
    assert not model.is_external and model.online == "OFFLINE" and model.size and model.size >= 130
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValidationError):
        client.models.add_local(str(empty), name="x", key=f"x-{unique}")
    with pytest.raises(ValidationError):
        client.models.add_local(str(tmp_path / "nope"), name="y", key=f"y-{unique}")
