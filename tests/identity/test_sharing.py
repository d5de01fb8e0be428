"""Sharing use cases with teams: rights come from the team's role on the share."""

from __future__ import annotations

import pytest

from adaptive_engine import Adaptive
from adaptive_engine.sdk.errors import NotFoundError, PermissionDeniedError, ValidationError
from tests.identity.helpers import user_client


def _shares(client: Adaptive, use_case: str) -> set[tuple[str, str, bool]]:
    return {(s.team.key, s.role.key, s.is_owner) for s in client.use_cases.get(use_case).shares}


def test_share_and_unshare(client: Adaptive, server, unique: str) -> None:
    uc = f"shared-{unique}"
    client.use_cases.create(key=uc)
    client.teams.create(key=f"x-{unique}")
    client.teams.create(key=f"y-{unique}")
    with user_client(client, server, f"x-{unique}@example.com", [(f"x-{unique}", "editor")]) as member:
        # Not shared: invisible, exactly like a use case that does not exist.
        with pytest.raises(NotFoundError) as hidden:
            member.use_cases.get(uc)
        with pytest.raises(NotFoundError) as missing:
            member.use_cases.get(f"nothing-{unique}")
        assert hidden.value.message.replace(uc, "?") == missing.value.message.replace(f"nothing-{unique}", "?")
        assert uc not in [u.key for u in member.use_cases.list()]

        shared = client.use_cases.share(uc, team=f"x-{unique}", role="viewer")
        assert (f"x-{unique}", "viewer", False) in {(s.team.key, s.role.key, s.is_owner) for s in shared.shares}
        got = member.use_cases.get(uc)
        assert got.permissions == ["use_case:read"]
        assert uc in [u.key for u in member.use_cases.list()]
        # A viewer cannot share.
        with pytest.raises(PermissionDeniedError):
            member.use_cases.share(uc, team=f"y-{unique}", role="viewer")

        client.use_cases.share(uc, team=f"x-{unique}", role="editor")
        assert "use_case:share" in member.use_cases.get(uc).permissions
        member.use_cases.share(uc, team=f"y-{unique}", role="viewer")
        assert (f"y-{unique}", "viewer", False) in _shares(client, uc)
        # ... but only within their own rights on it.
        before = _shares(client, uc)
        with pytest.raises(PermissionDeniedError):
            member.use_cases.share(uc, team=f"y-{unique}", role="admin")
        assert _shares(client, uc) == before

        client.use_cases.unshare(uc, team=f"x-{unique}")
        with pytest.raises(NotFoundError):
            member.use_cases.get(uc)
    assert _shares(client, uc) == {("default", "admin", True), (f"y-{unique}", "viewer", False)}


def test_share_bad_input_changes_nothing(client: Adaptive, unique: str) -> None:
    uc = f"shbad-{unique}"
    client.use_cases.create(key=uc)
    before = _shares(client, uc)
    with pytest.raises(NotFoundError):
        client.use_cases.share(uc, team=f"ghost-{unique}", role="viewer")
    with pytest.raises(NotFoundError):
        client.use_cases.share(uc, team="default", role=f"ghost-{unique}")
    with pytest.raises(NotFoundError):
        client.use_cases.share(f"ghost-{unique}", team="default", role="viewer")
    # The owner team cannot be removed when it is the only owner.
    with pytest.raises(ValidationError):
        client.use_cases.unshare(uc, team="default")
    assert _shares(client, uc) == before


def test_rights_come_from_every_team_of_the_user(client: Adaptive, server, unique: str) -> None:
    uc = f"multi-{unique}"
    client.use_cases.create(key=uc)
    client.teams.create(key=f"r-{unique}")
    client.teams.create(key=f"w-{unique}")
    client.use_cases.share(uc, team=f"r-{unique}", role="viewer")
    client.use_cases.share(uc, team=f"w-{unique}", role="editor")
    email = f"multi-{unique}@example.com"
    with user_client(client, server, email, [(f"r-{unique}", "viewer")]) as user:
        assert user.use_cases.get(uc).permissions == ["use_case:read"]
        client.users.add_to_team(email=email, team=f"w-{unique}", role="viewer")
        # The share's role is capped by the member's role in the team.
        assert user.use_cases.get(uc).permissions == ["use_case:read"]
        client.users.add_to_team(email=email, team=f"w-{unique}", role="editor")
        assert "use_case:share" in user.use_cases.get(uc).permissions
        client.users.remove_from_team(email=email, team=f"w-{unique}")
        assert user.use_cases.get(uc).permissions == ["use_case:read"]
