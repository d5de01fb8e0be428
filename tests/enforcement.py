"""The permission table: every GraphQL root field and every /api/v1 route has a row.

Each domain lists its rows in ``tests/<domain>/enforcement_cases.py`` as ``CASES: list[Case]``;
``tests/identity/test_enforcement.py`` collects them all and

- fails when a root field or route is covered by no row (add one when you add a field or route);
- runs ``op`` as each user of ``denied_as`` (PERMISSION_DENIED or NOT_FOUND, and ``snapshot`` — read by the
  admin — is the same before and after), then as ``allowed_as`` (it works);
- for rows with ``on_use_case``: runs it as a member of another team on a use case they cannot see and on
  a use case that does not exist; both must be NOT_FOUND with the same message (no existence leak).

The world (``World``): teams A and B; use case ``w.uc_a`` owned by A, ``w.uc_b`` owned by B; users
``editor`` and ``viewer`` (A's editor / viewer roles), ``outsider`` (B's editor: nothing on ``uc_a``) and
``admin``. ``w.fresh("x")`` gives a new unique key. Ops run through our SDK (``c``: the client of the user).
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from adaptive_engine import Adaptive


@dataclass
class World:
    server: Any
    admin: Adaptive
    suffix: str
    team_a: str
    team_b: str
    uc_a: str
    uc_b: str
    clients: dict[str, Adaptive] = field(default_factory=dict)
    # Anything a domain wants to prepare once (ids of objects in uc_a, …), keyed by the domain.
    extra: dict[str, Any] = field(default_factory=dict)
    _counter: Any = field(default_factory=itertools.count)

    def fresh(self, prefix: str = "k") -> str:
        return f"{prefix}-{self.suffix}-{next(self._counter)}"

    def client(self, who: str) -> Adaptive:
        return self.clients[who]


Op = Callable[[Adaptive, World], Any]


@dataclass
class Case:
    # "Query.<pythonName>" / "Mutation.<pythonName>" (python names: snake_case) or "<METHOD> <path>".
    covers: tuple[str, ...]
    op: Op | None = None
    # The same operation on a given use case key (the test derives ``op`` from it with ``w.uc_a``).
    on_use_case: Callable[[Adaptive, World, str], Any] | None = None
    allowed_as: tuple[str, ...] = ("editor",)
    denied_as: tuple[str, ...] = ("viewer",)
    snapshot: Callable[[Adaptive, World], Any] | None = None
    # Errors that still prove the permission check passed for an allowed user (e.g. CONFLICT: the job is
    # not running any more). Never PermissionDeniedError.
    allowed_errors: tuple[type[Exception], ...] = ()
    # Set up once per world before the row runs (objects the op needs), e.g. create a dataset in uc_a.
    setup: Callable[[World], None] | None = None
    name: str = ""

    def run(self, client: Adaptive, world: World) -> Any:
        if self.op is not None:
            return self.op(client, world)
        assert self.on_use_case is not None, f"{self.label}: give op or on_use_case"
        return self.on_use_case(client, world, world.uc_a)

    @property
    def label(self) -> str:
        return self.name or ",".join(self.covers)


def build_world(server: Any, admin: Adaptive) -> World:
    suffix = uuid.uuid4().hex[:6]
    team_a, team_b = f"enf-a-{suffix}", f"enf-b-{suffix}"
    admin.teams.create(key=team_a)
    admin.teams.create(key=team_b)
    uc_a, uc_b = f"enf-uc-a-{suffix}", f"enf-uc-b-{suffix}"
    admin.use_cases.create(key=uc_a, team=team_a)
    admin.use_cases.create(key=uc_b, team=team_b)
    world = World(server=server, admin=admin, suffix=suffix, team_a=team_a, team_b=team_b, uc_a=uc_a, uc_b=uc_b)
    world.clients["admin"] = admin
    for who, team, role in (("editor", team_a, "editor"), ("viewer", team_a, "viewer"), ("outsider", team_b, "editor")):
        email = f"{who}-{suffix}@example.com"
        admin.users.create(email=email, name=who, teams_with_role=[(team, role)])
        key = admin.api_keys.create(name="enforcement", user=email).key
        world.clients[who] = Adaptive(server.base_url, api_key=key, max_retries=0)
    return world


def gql(client: Adaptive, query: str, variables: dict[str, Any] | None = None) -> Any:
    """A raw GraphQL call through the SDK's transport (typed errors), for fields without an SDK method."""
    from adaptive_engine.sdk._requests import GraphQL

    def operation():
        return (yield GraphQL(query, variables or {}))

    return client._transport.run(operation())


def rest(
    client: Adaptive,
    method: str,
    path: str,
    json: Any = None,
    params: dict[str, Any] | None = None,
    raw: bool = False,
    **extra: Any,
) -> Any:
    """A raw /api/v1 call through the SDK's transport (typed errors)."""
    from adaptive_engine.sdk._requests import Rest

    def operation():
        return (yield Rest(method, path, json=json, params=params, raw=raw, **extra))

    return client._transport.run(operation())
