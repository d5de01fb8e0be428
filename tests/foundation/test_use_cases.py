from __future__ import annotations

import pytest

from adaptive_engine import Adaptive, AsyncAdaptive
from adaptive_engine.sdk.errors import ConflictError, NotFoundError, UseCaseNotSetError, ValidationError


def test_create_get_list(client: Adaptive, unique: str) -> None:
    created = client.use_cases.create(key=f"uc-{unique}", name="Support bot", description="answers tickets")
    assert created.key == f"uc-{unique}"
    assert created.name == "Support bot"
    assert created.description == "answers tickets"
    assert created.shares and created.shares[0].is_owner and created.shares[0].team.key == "default"
    assert "use_case:read" in created.permissions

    fetched = client.use_cases.get(f"uc-{unique}")
    assert fetched.id == created.id
    assert client.use_cases.get(created.id).key == created.key  # by id too

    keys = [u.key for u in client.use_cases.list()]
    assert f"uc-{unique}" in keys


def test_name_defaults_to_key_and_default_use_case(client: Adaptive, unique: str) -> None:
    client.use_cases.create(key=f"plain-{unique}")
    with pytest.raises(UseCaseNotSetError):
        client.use_cases.get()
    client.set_default_use_case(f"plain-{unique}")
    assert client.default_use_case == f"plain-{unique}"
    got = client.use_cases.get()
    assert got.name == f"plain-{unique}"


@pytest.mark.parametrize("bad_key", ["", "   ", "has space", "-leading-dash", "x" * 101, "émoji"])
def test_malformed_keys_are_rejected_and_nothing_is_created(client: Adaptive, bad_key: str) -> None:
    before = len(client.use_cases.list())
    with pytest.raises(ValidationError) as raised:
        client.use_cases.create(key=bad_key, name="n")
    assert raised.value.code == "INVALID_INPUT"
    assert len(client.use_cases.list()) == before


def test_duplicate_key_is_already_exists_and_changes_nothing(client: Adaptive, unique: str) -> None:
    first = client.use_cases.create(key=f"dup-{unique}", name="first")
    with pytest.raises(ConflictError) as raised:
        client.use_cases.create(key=f"dup-{unique}", name="second")
    assert raised.value.code == "ALREADY_EXISTS"
    assert client.use_cases.get(f"dup-{unique}").name == "first"
    assert client.use_cases.get(f"dup-{unique}").id == first.id


def test_unknown_use_case_and_team(client: Adaptive, unique: str) -> None:
    with pytest.raises(NotFoundError):
        client.use_cases.get(f"missing-{unique}")
    with pytest.raises(NotFoundError):
        client.use_cases.create(key=f"t-{unique}", team=f"no-team-{unique}")
    with pytest.raises(NotFoundError):
        client.use_cases.get(f"t-{unique}")


def test_me(client: Adaptive) -> None:
    me = client.users.me()
    assert me.email == "admin@localhost"
    assert [(t.team.key, t.role.key) for t in me.teams] == [("default", "admin")]


async def test_async_client(server, unique: str) -> None:
    async with AsyncAdaptive(server.base_url, api_key=server.api_key) as client:
        created = await client.use_cases.create(key=f"async-{unique}", name="Async")
        assert (await client.use_cases.get(f"async-{unique}")).id == created.id
        assert f"async-{unique}" in [u.key for u in await client.use_cases.list()]
        with pytest.raises(ConflictError):
            await client.use_cases.create(key=f"async-{unique}")
        assert (await client.users.me()).email == "admin@localhost"
