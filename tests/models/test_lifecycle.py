"""Lifecycle operations on both databases: updating and archiving use cases, updating and deleting models,
system prompt templates applied by a model service, and the fields of the registry's inputs that are honoured
or refused by name."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk.errors import ConflictError, NotFoundError, ValidationError
from tests.inference.fixtures import API_KEY, FakeUpstream


def _gql(server, query: str, variables: dict | None = None) -> dict:
    return httpx.post(
        f"{server.base_url}/api/graphql",
        headers={"Authorization": f"Bearer {server.api_key}"},
        json={"query": query, "variables": variables or {}},
    ).json()


def _external(client: Adaptive, key: str, endpoint: str = "http://127.0.0.1:9/v1"):
    return client.models.add_external(
        name=key, key=key, external_model_id="gpt-test", api_key=API_KEY, provider="open_ai", endpoint=endpoint
    )


def _metric(client: Adaptive, key: str) -> None:
    client.feedback.register_key(key=key, kind="scalar")


# --------------------------------------------------------------------------- use cases


def test_update_use_case_and_filter_by_archive(client: Adaptive, unique: str) -> None:
    _metric(client, f"acc-{unique}")
    created = client.use_cases.create(
        key=f"life-{unique}", emoji="🚀", gradient_color="linear-gradient(#fff, #000)", default_metric=f"acc-{unique}"
    )
    assert (created.emoji, created.gradient_color, created.default_metric) == (
        "🚀",
        "linear-gradient(#fff, #000)",
        f"acc-{unique}",
    )
    assert f"acc-{unique}" in {m.key for m in created.metrics}, "the default metric is linked to the use case"

    updated = client.use_cases.update(f"life-{unique}", name="Renamed", description="about it", emoji="🧪")
    assert (updated.name, updated.description, updated.emoji) == ("Renamed", "about it", "🧪")
    assert updated.gradient_color == "linear-gradient(#fff, #000)", "fields not given stay as they were"

    archived = client.use_cases.archive(f"life-{unique}")
    assert archived.is_archived
    assert f"life-{unique}" in {u.key for u in client.use_cases.list(is_archived=True)}
    assert f"life-{unique}" not in {u.key for u in client.use_cases.list(is_archived=False)}
    assert f"life-{unique}" in {u.key for u in client.use_cases.list()}
    assert not client.use_cases.unarchive(f"life-{unique}").is_archived
    assert f"life-{unique}" in {u.key for u in client.use_cases.list(is_archived=False)}


@pytest.mark.parametrize(
    "change, field",
    [
        ({"name": "  "}, "name"),
        ({"name": "x" * 201}, "name"),
        ({"emoji": ""}, "emoji"),
        ({"gradient_color": "url(javascript:alert(1));"}, "gradientColor"),
        ({"default_metric": "no-such-metric"}, "defaultMetric"),
    ],
)
def test_bad_use_case_updates_change_nothing(client: Adaptive, unique: str, change: dict, field: str) -> None:
    key = f"bad-{unique}"
    before = client.use_cases.create(key=key, name="Kept")
    with pytest.raises(ValidationError) as refused:
        client.use_cases.update(key, description="not written", **change)
    assert field in refused.value.message
    after = client.use_cases.get(key)
    assert (after.name, after.description, after.emoji, after.gradient_color) == (
        before.name,
        before.description,
        None,
        None,
    )


def test_bad_use_case_creation_names_the_field(client: Adaptive, unique: str) -> None:
    with pytest.raises(ValidationError, match="defaultMetric"):
        client.use_cases.create(key=f"nometric-{unique}", default_metric=f"missing-{unique}")
    with pytest.raises(NotFoundError):
        client.use_cases.get(f"nometric-{unique}")


def test_archived_use_case_refuses_traffic(client: Adaptive, unique: str, upstream: FakeUpstream) -> None:
    key = f"arch-{unique}"
    client.use_cases.create(key=key)
    _external(client, f"m-{unique}", endpoint=upstream.base_url)
    client.models.deploy(f"m-{unique}", use_case=key)
    hi = [{"role": "user", "content": "hi"}]
    assert client.chat.create(messages=hi, use_case=key).choices[0].message.content
    client.use_cases.archive(key)
    with pytest.raises(ConflictError, match="archived"):
        client.chat.create(messages=hi, use_case=key)
    with pytest.raises(ConflictError, match="archived"):
        client.interactions.create(messages=hi, completion="logged", use_case=key)
    client.use_cases.unarchive(key)
    assert client.chat.create(messages=hi, use_case=key).choices[0].message.content
    # The user id is stored with the completion (200 characters at most): a longer one is refused by name.
    with pytest.raises(ValidationError, match="user"):
        client.chat.create(messages=hi, use_case=key, user="u" * 201)


# --------------------------------------------------------------------------- models


def test_update_model_flags_and_filters(client: Adaptive, unique: str) -> None:
    model = _external(client, f"flags-{unique}")
    assert not model.is_published and not model.is_stable and model.in_storage is False
    updated = client.models.update_model(model.key, name="Shiny", published=True, stable=True)
    assert (updated.name, updated.is_published, updated.is_stable) == ("Shiny", True, True)
    assert model.key in {m.key for m in client.models.list(filter={"published": True})}
    assert model.key not in {m.key for m in client.models.list(filter={"published": False})}
    assert model.key not in {m.key for m in client.models.list(filter={"in_storage": True})}
    assert model.key in {m.key for m in client.models.list(filter={"in_storage": False})}
    # Published models are listed with viewAll false; an unpublished one attached nowhere is not.
    hidden = _external(client, f"hidden-{unique}")
    narrow = {m.key for m in client.models.list(filter={"view_all": False})}
    assert model.key in narrow and hidden.key not in narrow
    assert hidden.key in {m.key for m in client.models.list(filter={"view_all": True})}
    with pytest.raises(ValidationError, match="name"):
        client.models.update_model(model.key, name=" ")
    assert client.models.get(model.key).name == "Shiny"


def test_size_filter(client: Adaptive, unique: str, tmp_path: Path) -> None:
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    (folder / "weights.bin").write_bytes(b"\0" * 5000)
    local = client.models.add_local(path=str(folder), name=f"sized-{unique}", key=f"sized-{unique}")
    assert local.in_storage and local.size and local.size > 5000
    assert local.key in {m.key for m in client.models.list(filter={"size": {"gte": 5000, "lt": 10_000}})}
    assert local.key not in {m.key for m in client.models.list(filter={"size": {"gt": 10_000}})}


def test_delete_model_refused_while_in_use_then_frees_its_files(server, client: Adaptive, unique: str) -> None:
    # A model whose weights this server stored (what a training job leaves): under the data dir's models/.
    folder = Path(server.settings.resolved_files_dir) / "models" / f"trained-{unique}"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text("{}")
    (folder / "model.safetensors").write_bytes(b"\0" * 100)
    model = client.models.add_local(path=str(folder), name=f"trained-{unique}", key=f"trained-{unique}")
    client.use_cases.create(key=f"del-{unique}")
    client.models.attach(model.key, use_case=f"del-{unique}")

    with pytest.raises(ConflictError, match=f"del-{unique}"):
        client.models.delete(model.key)
    assert folder.is_dir() and client.models.get(model.key).key == model.key

    client.models.detach(model.key, use_case=f"del-{unique}")
    assert "weights removed" in client.models.delete(model.key)
    assert not folder.exists()
    with pytest.raises(NotFoundError):
        client.models.get(model.key)
    with pytest.raises(NotFoundError):
        client.models.delete(model.key)


def test_delete_keeps_a_folder_the_user_registered(client: Adaptive, unique: str, tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    model = client.models.add_local(path=str(folder), name=f"mine-{unique}", key=f"mine-{unique}")
    assert "weights" not in client.models.delete(model.key)
    assert (folder / "config.json").is_file()


def test_update_model_service_name_template_and_refusals(client: Adaptive, unique: str) -> None:
    key = f"svc-{unique}"
    client.use_cases.create(key=key)
    model = _external(client, f"svcm-{unique}")
    client.models.attach(model.key, use_case=key)
    template = client.system_prompt_templates.create(name="Pirate", template="Talk like a pirate.")
    service = client.models.update(model.key, use_case=key, name="Front desk", system_prompt_template=template.id)
    assert service.name == "Front desk" and service.system_prompt_template.id == template.id
    cleared = client.models.update(model.key, use_case=key, system_prompt_template="")
    assert cleared.system_prompt_template is None and cleared.name == "Front desk"
    with pytest.raises(NotFoundError, match="systemPromptTemplate"):
        client.models.update(model.key, use_case=key, system_prompt_template="0190b7d0-0000-7000-8000-000000000000")
    with pytest.raises(ValidationError, match="systemPromptTemplate"):
        client.models.update(model.key, use_case=key, system_prompt_template="not-a-uuid")


def test_refused_fields_are_named(server, client: Adaptive, unique: str) -> None:
    key = f"ref-{unique}"
    client.use_cases.create(key=key)
    model = _external(client, f"refm-{unique}")
    client.models.attach(model.key, use_case=key)
    mutation = "mutation($i: UpdateModelService!) { updateModelService(input: $i) { id } }"
    base = {"useCase": key, "modelService": model.key}
    for extra, field in [
        ({"toolProviders": ["search"]}, "toolProviders"),
        ({"placement": {"computePools": ["nowhere"]}}, "placement.computePools"),
        ({"placement": {"computePools": []}}, "placement.computePools"),
        ({"placement": {"computePools": ["local"], "maxTtftMs": 100}}, "placement.maxTtftMs"),
    ]:
        reply = _gql(server, mutation, {"i": {**base, **extra}})
        error = reply["errors"][0]
        assert error["extensions"]["code"] == "INVALID_INPUT" and field in error["message"], reply
    placed = _gql(
        server,
        "mutation($i: UpdateModelService!) { updateModelService(input: $i) { id } }",
        {"i": {**base, "placement": {"computePools": ["local"]}}},
    )
    assert "errors" not in placed, placed


# --------------------------------------------------------------------------- system prompt templates


def test_template_versions(client: Adaptive, unique: str) -> None:
    first = client.system_prompt_templates.create(name=f"t-{unique}", template="Hello {{customer}}, I am {{ agent }}.")
    assert first.arguments == ["customer", "agent"] and first.version == 1 and first.family == first.id
    second = client.system_prompt_templates.derive(first.id, template="Hi {{customer}}.")
    assert (second.version, second.family, second.name, second.arguments) == (2, first.id, f"t-{unique}", ["customer"])
    third = client.system_prompt_templates.derive(second.id, template="Yo.", name=f"t2-{unique}")
    versions = client.system_prompt_templates.list(family=third.id)
    assert [(t.version, t.template) for t in versions] == [(1, first.template), (2, second.template), (3, "Yo.")]
    assert {first.id, second.id, third.id} <= {t.id for t in client.system_prompt_templates.list()}
    with pytest.raises(ValidationError, match="template"):
        client.system_prompt_templates.create(name="empty", template="  ")
    with pytest.raises(NotFoundError):
        client.system_prompt_templates.derive("0190b7d0-0000-7000-8000-000000000000", template="x")


def test_service_template_is_applied_and_stored(server, client: Adaptive, unique: str, upstream: FakeUpstream) -> None:
    key = f"tpl-{unique}"
    client.use_cases.create(key=key)
    _external(client, f"tplm-{unique}", endpoint=upstream.base_url)
    client.models.deploy(f"tplm-{unique}", use_case=key)
    template = client.system_prompt_templates.create(name="Support", template="You help {{customer}}.")
    client.models.update(f"tplm-{unique}", use_case=key, system_prompt_template=template.id)
    hi = [{"role": "user", "content": "hi"}]

    answer = client.chat.create(messages=hi, use_case=key, labels={"customer": "Ada"})
    sent = [r.body for r in upstream.requests if r.body and r.body.get("model") == "gpt-test"][-1]
    assert sent["messages"][0] == {"role": "system", "content": "You help Ada."}
    server.settle()
    stored = client.interactions.get(answer.choices[0].completion_id, use_case=key)
    assert (stored.chat_messages[0].role, stored.chat_messages[0].content) == ("system", "You help Ada.")
    which = _gql(
        server,
        "query($u: IdOrKey!, $id: UUID!) { completion(useCase: $u, id: $id) { systemPromptTemplate } }",
        {"u": key, "id": answer.choices[0].completion_id},
    )
    assert which["data"]["completion"]["systemPromptTemplate"] == template.id

    # A request with its own system message keeps it; one without the template's argument is refused.
    own = [{"role": "system", "content": "Mine."}, *hi]
    client.chat.create(messages=own, use_case=key)
    sent = [r.body for r in upstream.requests if r.body and r.body.get("model") == "gpt-test"][-1]
    assert sent["messages"] == own
    with pytest.raises(ValidationError, match="customer"):
        client.chat.create(messages=hi, use_case=key)

    # Deriving with update_model_services moves the service to the new version.
    newer = client.system_prompt_templates.derive(
        template.id, template="You serve {{customer}}.", update_model_services=True
    )
    service = next(s for s in client.use_cases.get(key).model_services if s.key == f"tplm-{unique}")
    assert service.system_prompt_template.id == newer.id
    client.chat.create(messages=hi, use_case=key, labels={"customer": "Bob"})
    sent = [r.body for r in upstream.requests if r.body and r.body.get("model") == "gpt-test"][-1]
    assert sent["messages"][0]["content"] == "You serve Bob."


def test_embeddings_user_is_logged(
    client: Adaptive, unique: str, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    key = f"emb-{unique}"
    client.use_cases.create(key=key)
    client.models.add_external(
        name=f"e-{unique}",
        key=f"e-{unique}",
        external_model_id="emb-test",
        api_key=API_KEY,
        provider="open_ai",
        endpoint=upstream.base_url,
        embedding=True,
    )
    client.models.deploy(f"e-{unique}", use_case=key)
    with caplog.at_level("INFO", logger="adaptive_engine.server.domains.inference.service"):
        client.embeddings.create("hello", use_case=key, user=f"ada-{unique}")
    served = [r for r in caplog.records if r.getMessage() == "embeddings served" and r.use_case == key]
    assert [(r.user, r.model, r.inputs) for r in served] == [(f"ada-{unique}", f"e-{unique}", 1)]
    with pytest.raises(ValidationError, match="user"):
        client.embeddings.create("hello", use_case=key, user="u" * 201)
