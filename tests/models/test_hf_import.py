"""models.add_hf_model (GraphQL importHfModel): a MODEL_CONVERSION job that downloads (or copies) a model,
checks it, and registers it, on both databases. This machine has no route to the model hub: a hub id ends
in a clear error; a model folder on the server is the source that imports for real (a tiny randomly
initialised Llama with the bundled SmolLM2 tokenizer), then serves chat through the local backend."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaptive_engine import Adaptive
from adaptive_engine.models_bundled import world_readable
from adaptive_engine.sdk.errors import ConflictError, NotFoundError, ValidationError
from tests.ab_tests.support import in_db
from tests.jobs.helpers import wait_for
from tests.models.support import tiny_llama_folder

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama_folder(tmp_path_factory.mktemp("tiny-llama"))


def _secret(server, job_id: str) -> str | None:
    import uuid

    from adaptive_engine.server.db.models import Job

    async def work(session):
        return (await session.get(Job, uuid.UUID(job_id))).secret

    return in_db(server, work)


def _conversions(client: Adaptive) -> list[str]:
    return sorted(j.id for j in client.jobs.list(kind=["MODEL_CONVERSION"]).nodes)


def test_import_a_model_folder_then_serve_it(client: Adaptive, tiny_llama: Path, unique: str) -> None:
    key = f"tiny-{unique}"
    job = client.models.add_hf_model(str(tiny_llama), f"Tiny {unique}", key, hf_token="hf_secret_" + unique)
    assert job.kind == "MODEL_CONVERSION" and job.status in ("PENDING", "RUNNING") and job.use_case is None
    assert job.details.args["output_model_key"] == key and job.details.args["source"] == "folder"
    done = wait_for(client, job.id)
    assert done.status == "COMPLETED", done.error
    assert done.progress == 1.0 and done.stages[0].name == "model_conversion" and done.stages[0].status == "DONE"
    # The token is never shown: not in the arguments, not anywhere in the job.
    assert "hf_secret_" not in done.model_dump_json()
    assert [a.kind for a in done.details.artifacts] == ["MODEL"]
    assert job.id in _conversions(client)

    model = client.models.get(key)
    assert model.name == f"Tiny {unique}" and model.online == "OFFLINE" and not model.is_external
    # Registered in the data dir's model store, not in the source folder nor the job's scratch space.
    path = Path(done.details.artifacts[0].metadata["path"])
    assert path.parent.name == "models" and (path / "config.json").is_file() and "jobs" not in path.parts

    client.use_cases.create(key=f"hf-{unique}")
    client.set_default_use_case(f"hf-{unique}")
    client.models.attach(key, wait=True, make_default=True)
    assert client.models.get(key).online == "ONLINE"
    answer = client.chat.create(messages=[{"role": "user", "content": "Hello"}], max_tokens=5, temperature=0)
    assert answer.choices[0].message.content  # random weights: some text, no meaning
    assert answer.usage.completion_tokens > 0
    client.models.terminate(key, force=True)


def test_a_hub_id_without_network_fails_with_the_reason(
    server,
    client: Adaptive,
    unique: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # This machine has no route to the hub; offline mode makes sure a machine that has one fails as fast.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    key = f"hub-{unique}"
    job = client.models.add_hf_model("HuggingFaceTB/SmolLM2-135M", "SmolLM2 135M", key, hf_token="hf_x")
    done = wait_for(client, job.id)
    assert _secret(server, job.id) is None  # the token is dropped once the job ends
    assert done.status == "FAILED"
    first_line = done.error.splitlines()[0]
    assert first_line.startswith(
        "ConversionError: could not reach the model hub to download HuggingFaceTB/SmolLM2-135M: "
    )
    assert done.stages[0].status == "ERROR"
    with pytest.raises(NotFoundError):
        client.models.get(key)
    # The key was never taken: it can be imported again.
    assert key not in {m.key for m in client.models.list()}


def test_a_folder_that_is_not_a_causal_lm_fails(client: Adaptive, unique: str) -> None:
    from adaptive_engine.models_bundled import bundled_embedding_dir

    job = client.models.add_hf_model(str(bundled_embedding_dir()), "MiniLM", f"minilm-{unique}", hf_token="")
    done = wait_for(client, job.id)
    assert done.status == "FAILED"
    assert "is not a causal language model (BertModel)" in done.error.splitlines()[0]
    with pytest.raises(NotFoundError):
        client.models.get(f"minilm-{unique}")


def test_a_folder_without_weights_fails(client: Adaptive, unique: str, tmp_path: Path, tiny_llama: Path) -> None:
    (tmp_path / "config.json").write_text((tiny_llama / "config.json").read_text())
    world_readable(tmp_path)
    done = wait_for(client, client.models.add_hf_model(str(tmp_path), "Empty", f"empty-{unique}", hf_token="").id)
    assert done.status == "FAILED" and "holds no weights" in done.error.splitlines()[0]


@pytest.mark.parametrize(
    "args, error, message",
    [
        ({"hf_model_id": ""}, ValidationError, "modelId must not be empty"),
        ({"hf_model_id": "   "}, ValidationError, "modelId must not be empty"),
        ({"hf_model_id": "not a/valid id"}, ValidationError, "neither a model hub id"),
        ({"hf_model_id": "a/b/c"}, ValidationError, "neither a model hub id"),
        ({"hf_model_id": "/no/such/model/folder"}, ValidationError, "does not exist on the server"),
        ({"output_model_key": "bad key!"}, ValidationError, "malformed"),
        ({"output_model_name": " "}, ValidationError, "outputModelName must not be empty"),
        ({"compute_pool": "no-such-pool"}, NotFoundError, "compute pool 'no-such-pool' not found"),
    ],
)
def test_bad_arguments_are_refused_before_any_job(
    client: Adaptive, unique: str, args: dict, error: type, message: str
) -> None:
    before = (_conversions(client), len(client.models.list()))
    call = {
        "hf_model_id": "HuggingFaceTB/SmolLM2-135M",
        "output_model_name": "M",
        "output_model_key": f"m-{unique}",
        "hf_token": "",
        **args,
    }
    with pytest.raises(error, match=message):
        client.models.add_hf_model(**call)
    assert (_conversions(client), len(client.models.list())) == before


def test_a_taken_key_is_refused_before_the_job(client: Adaptive, unique: str, tiny_llama: Path) -> None:
    client.models.add_external(
        name="taken",
        key=f"taken-{unique}",
        external_model_id="m",
        api_key="k",
        provider="open_ai",
        endpoint="http://127.0.0.1:9/v1",
    )
    before = _conversions(client)
    with pytest.raises(ConflictError, match="already exists"):
        client.models.add_hf_model(str(tiny_llama), "Taken", f"taken-{unique}", hf_token="")
    assert _conversions(client) == before


def test_two_imports_into_one_key_are_refused(client: Adaptive, unique: str, tiny_llama: Path) -> None:
    first = client.models.add_hf_model(str(tiny_llama), "One", f"one-{unique}", hf_token="")
    try:
        with pytest.raises(ConflictError, match="already being imported"):
            client.models.add_hf_model(str(tiny_llama), "One again", f"one-{unique}", hf_token="")
    finally:
        assert wait_for(client, first.id).status == "COMPLETED"


def test_conversion_jobs_are_seen_and_canceled_with_model_register(
    server, client: Adaptive, unique: str, tiny_llama: Path
) -> None:
    """A job of no use case: a user with model:register (editor) sees and cancels it; a viewer does not see it."""
    team = f"hft-{unique}"
    client.teams.create(key=team)
    users = {}
    for role in ("editor", "viewer"):
        email = f"hf-{role}-{unique}@example.com"
        client.users.create(email=email, name=role, teams_with_role=[(team, role)])
        users[role] = Adaptive(server.base_url, api_key=client.api_keys.create(name="t", user=email).key, max_retries=0)
    editor, viewer = users["editor"], users["viewer"]
    job = editor.models.add_hf_model(str(tiny_llama), "Canceled", f"cancel-{unique}", hf_token="hf_tok")
    assert _secret(server, job.id) == "hf_tok"
    assert editor.jobs.get(job.id).id == job.id
    assert job.id in _conversions(editor) and job.id in _conversions(client)
    with pytest.raises(NotFoundError):
        viewer.jobs.get(job.id)
    assert job.id not in _conversions(viewer)
    with pytest.raises(NotFoundError):
        viewer.jobs.cancel(job.id)
    assert editor.jobs.cancel(job.id).status == "CANCELED"
    assert wait_for(client, job.id).status == "CANCELED" and _secret(server, job.id) is None
    for user in users.values():
        user.close()
