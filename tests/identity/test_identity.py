"""Users, teams, roles, permissions and API keys through our SDK, on both databases."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from adaptive_engine import Adaptive, AsyncAdaptive
from adaptive_engine.sdk.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    ValidationError,
)
from adaptive_engine.server.auth.permissions import CATALOGUE
from tests.identity.helpers import user_client

REPO = Path(__file__).resolve().parents[2]


def test_builtin_roles_and_catalogue(client: Adaptive) -> None:
    roles = {r.key: r for r in client.roles.list()}
    assert {"admin", "editor", "viewer"} <= set(roles)
    assert roles["admin"].permissions == ["admin"]
    assert roles["viewer"].permissions == ["use_case:read"]
    permissions = client.permissions.list()
    assert permissions == sorted(CATALOGUE)
    assert {
        "use_case:read",
        "use_case:write",
        "use_case:share",
        "model:deploy",
        "job:run",
        "feedback:write",
        "admin",
    } <= set(permissions)
    assert "default" in [t.key for t in client.teams.list()]


def test_teams_and_roles_create(client: Adaptive, unique: str) -> None:
    team = client.teams.create(key=f"team-{unique}")
    assert team.key == f"team-{unique}" and team.name == f"team-{unique}"
    named = client.teams.create(key=f"named-{unique}", name="Named team")
    assert named.name == "Named team"
    assert {f"team-{unique}", f"named-{unique}"} <= {t.key for t in client.teams.list()}
    with pytest.raises(ConflictError):
        client.teams.create(key=f"team-{unique}")
    with pytest.raises(ValidationError):
        client.teams.create(key="bad key")

    role = client.roles.create(key=f"role-{unique}", permissions=["use_case:read", "feedback:write"])
    assert role.name == f"role-{unique}" and role.permissions == ["use_case:read", "feedback:write"]
    with pytest.raises(ConflictError):
        client.roles.create(key=f"role-{unique}", permissions=["use_case:read"])
    before = len(client.roles.list())
    with pytest.raises(ValidationError) as raised:
        client.roles.create(key=f"bad-{unique}", permissions=["use_case:read", "fly:away"])
    assert "fly:away" in raised.value.message
    with pytest.raises(ValidationError):
        client.roles.create(key=f"empty-{unique}", permissions=[])
    assert len(client.roles.list()) == before


def test_users_lifecycle(client: Adaptive, server, unique: str) -> None:
    client.teams.create(key=f"t1-{unique}")
    client.teams.create(key=f"t2-{unique}")
    email = f"ann-{unique}@example.com"
    user = client.users.create(email=email, name="Ann", teams_with_role=[(f"t1-{unique}", "editor")])
    assert user.email == email and user.name == "Ann"
    assert [(t.team.key, t.role.key) for t in user.teams] == [(f"t1-{unique}", "editor")]
    assert email in [u.email for u in client.users.list()]

    member = client.users.add_to_team(email=email, team=f"t2-{unique}", role="viewer")
    assert member.team.key == f"t2-{unique}" and member.role.key == "viewer"
    assert {(t.team.key, t.role.key) for t in member.user.teams} == {
        (f"t1-{unique}", "editor"),
        (f"t2-{unique}", "viewer"),
    }
    # Setting again changes the role.
    changed = client.users.add_to_team(email=email, team=f"t2-{unique}", role="editor")
    assert {(t.team.key, t.role.key) for t in changed.user.teams} == {
        (f"t1-{unique}", "editor"),
        (f"t2-{unique}", "editor"),
    }

    after = client.users.remove_from_team(email=email, team=f"t1-{unique}")
    assert [(t.team.key, t.role.key) for t in after.teams] == [(f"t2-{unique}", "editor")]
    with pytest.raises(NotFoundError):
        client.users.remove_from_team(email=email, team=f"t1-{unique}")

    deleted = client.users.delete(email)
    assert deleted.email == email
    assert email not in [u.email for u in client.users.list()]
    with pytest.raises(NotFoundError):
        client.users.delete(email)


def test_user_bad_input_changes_nothing(client: Adaptive, unique: str) -> None:
    email = f"bob-{unique}@example.com"
    client.users.create(email=email, name="Bob", teams_with_role=[("default", "viewer")])
    count = len(client.users.list())
    with pytest.raises(ConflictError):
        client.users.create(email=email, name="Bob again", teams_with_role=[])
    with pytest.raises(ConflictError):
        client.users.create(email=email.upper(), name="Bob shouting", teams_with_role=[])
    with pytest.raises(ValidationError):
        client.users.create(email="not-an-email", name="X", teams_with_role=[])
    with pytest.raises(NotFoundError) as raised:
        client.users.create(
            email=f"c-{unique}@example.com", name="C", teams_with_role=[(f"no-team-{unique}", "viewer")]
        )
    assert "team" in raised.value.message
    with pytest.raises(NotFoundError) as raised:
        client.users.create(
            email=f"c-{unique}@example.com", name="C", teams_with_role=[("default", f"no-role-{unique}")]
        )
    assert "role" in raised.value.message
    assert len(client.users.list()) == count
    with pytest.raises(NotFoundError):
        client.users.add_to_team(email=f"nobody-{unique}@example.com", team="default", role="viewer")
    with pytest.raises(NotFoundError):
        client.users.add_to_team(email=email, team="default", role=f"no-role-{unique}")
    assert [(t.team.key, t.role.key) for t in client.users.list() if False] == []


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_last_admin_is_protected(backend: str, tmp_path: Path) -> None:
    """On a fresh deployment (shared servers gain admins in other tests)."""
    from contextlib import nullcontext

    from tests.support import LiveServer, make_settings, private_postgres_database

    with private_postgres_database() if backend == "postgresql" else nullcontext(None) as url:
        with (
            LiveServer(make_settings(tmp_path, url)) as fresh,
            Adaptive(fresh.base_url, api_key=fresh.api_key) as client,
        ):
            with pytest.raises(ConflictError) as raised:
                client.users.delete("admin@localhost")
            assert "admin" in raised.value.message
            with pytest.raises(ConflictError):
                client.users.remove_from_team(email="admin@localhost", team="default")
            with pytest.raises(ConflictError):
                client.users.add_to_team(email="admin@localhost", team="default", role="viewer")
            me = client.users.me()
            assert [(t.team.key, t.role.key) for t in me.teams] == [("default", "admin")]
            # With a second admin, the first can step down; the second then is the last one.
            client.users.create(email="second@example.com", name="Second", teams_with_role=[("default", "admin")])
            second_key = client.api_keys.create(user="second@example.com").key
            client.users.add_to_team(email="admin@localhost", team="default", role="viewer")
            with Adaptive(fresh.base_url, api_key=second_key) as second:
                with pytest.raises(ConflictError):
                    second.users.delete("second@example.com")
                second.users.delete("admin@localhost")


def test_a_second_admin_can_be_removed_while_one_remains(client: Adaptive, server, unique: str) -> None:
    email = f"admin2-{unique}@example.com"
    client.users.create(email=email, name="Second admin", teams_with_role=[("default", "admin")])
    client.users.add_to_team(email=email, team="default", role="viewer")
    client.users.delete(email)


def test_api_keys_issue_list_revoke(client: Adaptive, server, unique: str) -> None:
    email = f"keys-{unique}@example.com"
    with user_client(client, server, email, [("default", "viewer")]) as user:
        assert user.users.me().email == email
        # The user mints and revokes their own keys.
        second = user.api_keys.create(name="laptop")
        assert second.key.startswith("ae_") and second.api_key.name == "laptop"
        listed = user.api_keys.list()
        assert {k.name for k in listed} == {"test", "laptop"}
        assert all(not hasattr(k, "key") or k.key is None for k in listed)
        with Adaptive(server.base_url, api_key=second.key) as laptop:
            assert laptop.users.me().email == email
            revoked = user.api_keys.revoke(second.api_key.id)
            assert revoked.revoked_at is not None
            with pytest.raises(AuthenticationError):
                laptop.users.me()
        # A user cannot see nor touch another user's keys; an admin can.
        admin_keys = client.api_keys.list()
        with pytest.raises(NotFoundError):
            user.api_keys.revoke(admin_keys[0].id)
        with pytest.raises(NotFoundError):
            user.api_keys.list(user="admin@localhost")
        with pytest.raises(NotFoundError):
            user.api_keys.create(user="admin@localhost")
        assert {k.name for k in client.api_keys.list(user=email)} == {"test", "laptop"}
        first = [k for k in client.api_keys.list(user=email) if k.name == "test"][0]
        client.api_keys.revoke(first.id)
        with pytest.raises(AuthenticationError):
            user.users.me()
    with pytest.raises(NotFoundError):
        client.api_keys.revoke("00000000-0000-0000-0000-000000000000")


def test_keys_are_stored_as_digests(client: Adaptive, server, unique: str) -> None:
    """The database keeps a key's SHA-256 digest and a short display prefix, never the key."""
    import hashlib

    from sqlalchemy import select

    from adaptive_engine.server.db.models import ApiKey
    from tests.ab_tests.support import in_db

    created = client.api_keys.create(name=f"digest-{unique}")

    async def work(session):
        row = (await session.execute(select(ApiKey).where(ApiKey.name == f"digest-{unique}"))).scalar_one()
        return {c.key: getattr(row, c.key) for c in ApiKey.__table__.columns}

    stored = in_db(server, work)
    assert stored["key_hash"] == hashlib.sha256(created.key.encode()).hexdigest()
    assert all(created.key not in str(value) for value in stored.values())
    assert created.key.startswith(stored["prefix"]) and len(stored["prefix"]) < len(created.key) // 2


def test_management_needs_permissions(client: Adaptive, server, unique: str) -> None:
    email = f"editor-{unique}@example.com"
    with user_client(client, server, email, [("default", "editor")]) as editor:
        for call in (
            lambda: editor.users.list(),
            lambda: editor.users.create(email=f"x-{unique}@example.com", name="X", teams_with_role=[]),
            lambda: editor.users.delete("admin@localhost"),
            lambda: editor.users.add_to_team(email=email, team="default", role="admin"),
            lambda: editor.users.remove_from_team(email="admin@localhost", team="default"),
            lambda: editor.teams.create(key=f"x-{unique}"),
            lambda: editor.roles.create(key=f"x-{unique}", permissions=["admin"]),
        ):
            with pytest.raises(PermissionDeniedError):
                call()
        # What every authenticated user may read.
        assert editor.permissions.list() == sorted(CATALOGUE)
        assert "viewer" in [r.key for r in editor.roles.list()]
        assert "default" in [t.key for t in editor.teams.list()]
    assert [(t.team.key, t.role.key) for t in client.users.me().teams] == [("default", "admin")]
    assert f"x-{unique}" not in [t.key for t in client.teams.list()]


def test_custom_role_grants_exactly_its_permissions(client: Adaptive, server, unique: str) -> None:
    client.teams.create(key=f"ops-{unique}")
    client.roles.create(key=f"team-admin-{unique}", permissions=["team:manage"])
    email = f"ops-{unique}@example.com"
    with user_client(client, server, email, [(f"ops-{unique}", f"team-admin-{unique}")]) as ops:
        ops.teams.create(key=f"made-by-ops-{unique}")
        with pytest.raises(PermissionDeniedError):
            ops.users.list()
        with pytest.raises(PermissionDeniedError):
            ops.use_cases.create(key=f"uc-{unique}")


async def test_async_identity(server, unique: str) -> None:
    async with AsyncAdaptive(server.base_url, api_key=server.api_key) as client:
        team = await client.teams.create(key=f"async-{unique}", name="Async team")
        role = await client.roles.create(key=f"async-{unique}", permissions=["use_case:read"], name="Async role")
        user = await client.users.create(f"async-{unique}@example.com", "Async", [(team.key, role.key)])
        assert user.teams[0].role.name == "Async role"
        assert "admin" in await client.permissions.list()
        assert (await client.users.remove_from_team(user.email, team.key)).teams == []
        await client.users.delete(user.email)


def test_cli_keys_list_and_revoke(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(REPO / "src"), "ADAPTIVE_ADMIN_API_KEY": "ae_cli_admin_key_123"}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "adaptive_engine.cli", *args, "--data-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            env={**__import__("os").environ, **env},
            cwd=REPO,
            timeout=120,
        )

    created = cli("keys", "create", "--email", "admin@localhost", "--name", "ci")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    listed = cli("keys", "list", "--email", "admin@localhost")
    assert listed.returncode == 0, listed.stderr
    assert "ci" in listed.stdout and key[:10] in listed.stdout and key not in listed.stdout
    line = [row for row in listed.stdout.splitlines() if " ci " in f" {row} "][0]
    key_id = line.split()[0]
    revoked = cli("keys", "revoke", key_id)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in cli("keys", "list", "--email", "admin@localhost").stdout
    missing = cli("keys", "revoke", "00000000-0000-0000-0000-000000000000")
    assert missing.returncode == 1 and "not found" in missing.stderr
    unknown = cli("keys", "list", "--email", "nobody@example.com")
    assert unknown.returncode == 1 and "not found" in unknown.stderr
