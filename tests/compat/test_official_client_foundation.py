"""The official adaptive-sdk client against our server: use cases and users.me."""

from __future__ import annotations

import pytest

adaptive_sdk = pytest.importorskip("adaptive_sdk")


@pytest.fixture
def official(server):
    return adaptive_sdk.Adaptive(base_url=server.base_url, api_key=server.api_key)


def test_use_cases_create_get_list(official, unique: str) -> None:
    created = official.use_cases.create(key=f"off-{unique}", name="Official", description="from the official client")
    assert created.key == f"off-{unique}"
    assert created.shares[0].is_owner
    got = official.use_cases.get(f"off-{unique}")
    assert got.id == created.id and got.description == "from the official client"
    assert f"off-{unique}" in [u.key for u in official.use_cases.list()]


def test_users_me(official) -> None:
    me = official.users.me()
    assert me.email == "admin@localhost"
    assert me.teams[0].role.key == "admin"
