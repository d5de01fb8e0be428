"""Permission table rows of identity and use cases (see tests/enforcement.py)."""

from __future__ import annotations

from tests.enforcement import Case


def _teams(a, w):
    return sorted(t.key for t in a.teams.list())


def _roles(a, w):
    return sorted((r.key, tuple(r.permissions)) for r in a.roles.list())


def _users(a, w):
    return sorted((u.email, tuple(sorted((t.team.key, t.role.key) for t in u.teams))) for u in a.users.list())


def _use_cases(a, w):
    return sorted(
        (u.key, tuple(sorted((s.team.key, s.role.key, s.is_owner) for s in u.shares))) for u in a.use_cases.list()
    )


def _keys(a, w):
    return sorted((k.id, k.revoked_at) for u in ("admin@localhost",) for k in a.api_keys.list(user=u))


def _victim(w) -> str:
    """A throwaway user in team A, made by the admin."""
    email = f"{w.fresh('victim')}@example.com"
    w.admin.users.create(email=email, name="victim", teams_with_role=[(w.team_a, "viewer")])
    return email


CASES = [
    # Open to every authenticated caller (what they return is filtered or public).
    Case(("Query.me",), op=lambda c, w: c.users.me(), allowed_as=("viewer", "outsider", "editor"), denied_as=()),
    Case(("Query.teams",), op=lambda c, w: c.teams.list(), allowed_as=("viewer", "outsider"), denied_as=()),
    Case(("Query.roles",), op=lambda c, w: c.roles.list(), allowed_as=("viewer", "outsider"), denied_as=()),
    Case(("Query.permissions",), op=lambda c, w: c.permissions.list(), allowed_as=("viewer",), denied_as=()),
    Case(("Query.use_cases",), op=lambda c, w: c.use_cases.list(), allowed_as=("viewer", "outsider"), denied_as=()),
    Case(("Query.api_keys",), op=lambda c, w: c.api_keys.list(), allowed_as=("viewer", "outsider"), denied_as=()),
    Case(
        ("Query.api_keys",),
        name="api_keys of another user",
        op=lambda c, w: c.api_keys.list(user="admin@localhost"),
        allowed_as=("admin",),
        denied_as=("editor", "viewer"),
    ),
    Case(
        ("Mutation.create_api_key",),
        name="create_api_key for another user",
        op=lambda c, w: c.api_keys.create(user="admin@localhost"),
        allowed_as=("admin",),
        denied_as=("editor", "outsider"),
        snapshot=_keys,
    ),
    Case(
        ("Mutation.create_api_key",),
        op=lambda c, w: c.api_keys.create(name="own"),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("Mutation.revoke_api_key",),
        op=lambda c, w: c.api_keys.revoke(w.admin.api_keys.create(name="to-revoke").api_key.id),
        allowed_as=("admin",),
        denied_as=("editor", "viewer"),
        snapshot=lambda a, w: sum(k.revoked_at is not None for k in a.api_keys.list()),
    ),
    # Deployment management.
    Case(("Query.users",), op=lambda c, w: c.users.list(), allowed_as=("admin",), denied_as=("editor", "viewer")),
    Case(
        ("Mutation.create_user",),
        op=lambda c, w: c.users.create(
            email=f"{w.fresh('u')}@example.com", name="n", teams_with_role=[(w.team_a, "admin")]
        ),
        allowed_as=("admin",),
        denied_as=("editor", "viewer"),
        snapshot=_users,
    ),
    Case(
        ("Mutation.delete_user",),
        op=lambda c, w: c.users.delete(
            w.extra.setdefault("victims", []).pop() if w.extra.get("victims") else _victim(w)
        ),
        allowed_as=("admin",),
        denied_as=("editor", "viewer"),
        setup=lambda w: w.extra.setdefault("victims", []).extend([_victim(w) for _ in range(3)]),
        snapshot=_users,
    ),
    Case(
        ("Mutation.set_team_member",),
        op=lambda c, w: c.users.add_to_team(email=_victim(w), team=w.team_a, role="admin"),
        allowed_as=("admin",),
        denied_as=("editor", "viewer"),
        snapshot=lambda a, w: [u for u in _users(a, w) if "victim" not in u[0]],
    ),
    Case(
        ("Mutation.remove_team_member",),
        op=lambda c, w: c.users.remove_from_team(email=_victim(w), team=w.team_a),
        allowed_as=("admin",),
        denied_as=("editor", "viewer"),
        snapshot=lambda a, w: [u for u in _users(a, w) if "victim" not in u[0]],
    ),
    Case(
        ("Mutation.create_team",),
        op=lambda c, w: c.teams.create(key=w.fresh("team")),
        allowed_as=("admin",),
        denied_as=("editor", "viewer"),
        snapshot=_teams,
    ),
    Case(
        ("Mutation.create_role",),
        op=lambda c, w: c.roles.create(key=w.fresh("role"), permissions=["admin"]),
        allowed_as=("admin",),
        denied_as=("editor", "viewer"),
        snapshot=_roles,
    ),
    # Use cases.
    Case(
        ("Query.use_case",),
        on_use_case=lambda c, w, uc: c.use_cases.get(uc),
        allowed_as=("viewer", "editor"),
        denied_as=(),
    ),
    Case(
        ("Mutation.create_use_case",),
        op=lambda c, w: c.use_cases.create(key=w.fresh("uc"), team=w.team_a),
        allowed_as=("editor",),
        denied_as=("viewer",),
        snapshot=_use_cases,
    ),
    Case(
        ("Mutation.share_use_case",),
        # A fresh team each time: sharing with team B would let the outsider in for the rows that follow.
        on_use_case=lambda c, w, uc: c.use_cases.share(
            uc, team=w.admin.teams.create(key=w.fresh("t")).key, role="viewer"
        ),
        allowed_as=("editor",),
        denied_as=("viewer",),
        snapshot=_use_cases,
    ),
]
