"""Model names on the data plane and GET /api/v1/models, through the official ``openai`` client against a live
server whose external models are served by the fake upstream (rule: domains/inference/names.py)."""

from __future__ import annotations

import httpx
import openai
import pytest

from adaptive_engine.server.db import models as orm
from tests.ab_tests.support import in_db
from tests.inference.fixtures import API_KEY
from tests.inference.gateway_world import Gateway

HI = [{"role": "user", "content": "hi"}]


def served_by(gw: Gateway, who: str, name: str) -> str:
    """The label (use_case/model) of what served ``name`` for ``who``."""
    return gw.openai(who).chat.completions.create(model=name, messages=HI).model


def test_use_case_and_use_case_slash_model(gw: Gateway, upstream):
    k = gw.k
    assert served_by(gw, "admin", k("uc1")) == f"{k('uc1')}/{k('solo')}"
    assert upstream.requests[-1].body["model"] == k("solo")
    assert served_by(gw, "alice", f"{k('uc2')}/{k('shared')}") == f"{k('uc2')}/{k('shared')}"


def test_bare_model_key_attached_to_one_usable_use_case(gw: Gateway, upstream):
    k = gw.k
    assert served_by(gw, "alice", k("solo")) == f"{k('uc1')}/{k('solo')}"
    assert upstream.requests[-1].body["model"] == k("solo")
    # "cross" is attached to uc1 (team 1) and uc3 (team 2): each caller reaches the one it may use.
    assert served_by(gw, "alice", k("cross")) == f"{k('uc1')}/{k('cross')}"
    assert served_by(gw, "bob", k("cross")) == f"{k('uc3')}/{k('cross')}"


def test_bare_model_key_goes_to_the_use_case_where_it_is_the_default(gw: Gateway):
    k = gw.k
    assert served_by(gw, "alice", k("def")) == f"{k('uc2')}/{k('def')}"


def test_ambiguous_bare_model_key_is_a_400_naming_the_candidates(gw: Gateway):
    k = gw.k
    with pytest.raises(openai.BadRequestError) as caught:
        gw.openai("alice").chat.completions.create(model=k("shared"), messages=HI)
    message = caught.value.body["message"]
    assert f"'{k('uc1')}/{k('shared')}'" in message and f"'{k('uc2')}/{k('shared')}'" in message
    assert caught.value.body["details"]["candidates"] == [f"{k('uc1')}/{k('shared')}", f"{k('uc2')}/{k('shared')}"]
    # The admin sees uc1, uc2 and uc3: "cross" is the default of uc3 only, so it is not ambiguous for them.
    assert served_by(gw, "admin", k("cross")) == f"{k('uc3')}/{k('cross')}"


def test_a_name_is_split_only_on_a_use_case(gw: Gateway, upstream):
    """An id of the model hub (``org/name``) is a model key, not use case ``org`` + model ``name``."""
    k = gw.k
    hub_key = f"org-{gw.s}/Model-7B"

    async def add(session):
        from sqlalchemy import select

        uc = (await session.execute(select(orm.UseCase).where(orm.UseCase.key == k("uc3")))).scalar_one()
        model = orm.Model(
            key=hub_key,
            name="hub",
            kind="chat",
            provider="open_ai",
            is_external=True,
            status="ONLINE",
            source={"external_model_id": "hub-model", "endpoint": upstream.base_url},
            secret=API_KEY,
        )
        session.add(model)
        await session.flush()
        session.add(orm.ModelService(use_case_id=uc.id, model_id=model.id))

    in_db(gw.server, add)
    assert served_by(gw, "bob", hub_key) == f"{k('uc3')}/{hub_key}"
    assert upstream.requests[-1].body["model"] == "hub-model"
    assert served_by(gw, "bob", f"{k('uc3')}/{hub_key}") == f"{k('uc3')}/{hub_key}"
    # Alice cannot use uc3: for her the name is attached nowhere.
    with pytest.raises(openai.NotFoundError) as caught:
        gw.openai("alice").chat.completions.create(model=hub_key, messages=HI)
    assert caught.value.body["message"] == f"model '{hub_key}' is not attached to any use case you can use"


@pytest.mark.parametrize(
    ("who", "name", "error", "needle"),
    [
        ("alice", "nothing-here", openai.NotFoundError, "no use case or model named 'nothing-here'"),
        ("alice", "nothing/here", openai.NotFoundError, "no use case or model named 'nothing/here'"),
        ("alice", "{uc1}/nothing", openai.NotFoundError, "model 'nothing' not found"),
        # uc3 is team 2's: for alice it does not exist, exactly like a missing one.
        ("alice", "{uc3}/{cross}", openai.NotFoundError, "no use case or model named '{uc3}/{cross}'"),
        ("alice", "{uc3}", openai.NotFoundError, "model must be"),
        # vera views team 1's use cases but may not run inference.
        ("vera", "{uc1}", openai.PermissionDeniedError, "permission 'inference:run' is required"),
        ("vera", "{solo}", openai.PermissionDeniedError, "permission 'inference:run' is required"),
        ("alice", " ", openai.BadRequestError, "model must be"),
    ],
)
def test_names_that_do_not_resolve(gw: Gateway, who, name, error, needle):
    names = {n: gw.k(n) for n in ("uc1", "uc3", "cross", "solo")}
    with pytest.raises(error) as caught:
        gw.openai(who).chat.completions.create(model=name.format(**names), messages=HI)
    assert needle.format(**names) in caught.value.body["message"]


def test_models_list_holds_what_the_caller_may_use(gw: Gateway):
    k = gw.k
    ids = {m.id for m in gw.openai("alice").models.list()}
    mine = {i for i in ids if i.endswith(gw.s)}
    assert mine == {
        k("uc1"),
        f"{k('uc1')}/{k('solo')}",
        f"{k('uc1')}/{k('shared')}",
        f"{k('uc1')}/{k('def')}",
        f"{k('uc1')}/{k('cross')}",
        k("uc2"),
        f"{k('uc2')}/{k('shared')}",
        f"{k('uc2')}/{k('def')}",
        k("solo"),
        k("def"),
        k("cross"),  # "shared" is ambiguous for alice: not listed bare
    }
    bob = {m.id for m in gw.openai("bob").models.list() if m.id.endswith(gw.s)}
    assert bob == {k("uc3"), f"{k('uc3')}/{k('cross')}", k("cross")}
    assert {m.id for m in gw.openai("vera").models.list() if m.id.endswith(gw.s)} == set()
    # Every listed name works.
    for name in sorted(mine):
        gw.openai("alice").chat.completions.create(model=name, messages=HI)


def test_models_list_shape_and_retrieve(gw: Gateway):
    k = gw.k
    r = httpx.get(gw.api_url + "/models", headers={"Authorization": f"Bearer {gw.keys['alice']}"})
    assert r.status_code == 200 and r.json()["object"] == "list"
    entry = next(m for m in r.json()["data"] if m["id"] == k("solo"))
    assert entry["object"] == "model" and entry["owned_by"] == "open_ai" and entry["created"] > 0
    assert (entry["use_case"], entry["model"], entry["kind"], entry["status"]) == (
        k("uc1"),
        k("solo"),
        "chat",
        "ONLINE",
    )
    client = gw.openai("alice")
    got = client.models.retrieve(f"{k('uc1')}/{k('shared')}")
    assert (got.id, got.object, got.owned_by) == (f"{k('uc1')}/{k('shared')}", "model", "open_ai")
    assert client.models.retrieve(k("uc1")).model_extra["model"] == k("solo")
    assert client.models.retrieve(k("def")).model_extra["use_case"] == k("uc2")
    with pytest.raises(openai.BadRequestError):
        client.models.retrieve(k("shared"))
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve(f"{k('uc2')}/{k('solo')}")  # a model, but not attached there
    with pytest.raises(openai.NotFoundError):
        gw.openai("bob").models.retrieve(k("uc1"))
    with pytest.raises(openai.PermissionDeniedError):
        gw.openai("vera").models.retrieve(k("uc1"))


def test_embeddings_take_the_same_names(gw: Gateway, upstream):
    k = gw.k
    gw.admin.models.add_external(
        name=k("emb"),
        key=k("emb"),
        external_model_id="emb-x",
        api_key=API_KEY,
        provider="open_ai",
        endpoint=upstream.base_url,
        embedding=True,
    )
    gw.attach(k("emb"), k("uc2"))
    vectors = gw.openai("alice").embeddings.create(model=k("emb"), input=["abc"], encoding_format="float")
    assert vectors.data[0].embedding == [3.0, 1.0, 0.5]
    assert upstream.requests[-1].body["model"] == "emb-x"


def test_embeddings_refuse_fields_they_do_not_take(gw: Gateway):
    r = httpx.post(
        gw.api_url + "/embeddings",
        headers={"Authorization": f"Bearer {gw.server.api_key}"},
        json={"model": gw.k("uc1"), "input": "x", "truncate": "END"},
    )
    assert r.status_code == 400 and r.json()["error"]["message"] == "'truncate' is not supported on /embeddings"
