"""Enforcement everywhere: every root field and route is guarded and has a row in the permission table,
and every row behaves (denied without the permission, changing and leaking nothing; works with it)."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from adaptive_engine.sdk.errors import NotFoundError, PermissionDeniedError
from adaptive_engine.server.auth.guard import iter_routes, unguarded_fields, unguarded_routes
from adaptive_engine.server.graphql.schema import build_schema
from tests.enforcement import Case, World, build_world

TESTS = Path(__file__).resolve().parents[1]


def _collect_cases() -> list[Case]:
    cases: list[Case] = []
    for path in sorted(TESTS.glob("*/enforcement_cases*.py")):
        module = importlib.import_module(f"tests.{path.parent.name}.{path.stem}")
        cases.extend(module.CASES)
    return cases


CASES = _collect_cases()


def _root_fields() -> set[str]:
    schema = build_schema()
    names = set()
    for root in ("query", "mutation"):
        definition = getattr(schema, root, None)
        if definition is not None:
            for field in definition.__strawberry_definition__.fields:
                names.add(f"{root.capitalize()}.{field.python_name}")
    return names


def _routes(app) -> set[str]:
    return {
        f"{method} {path}"
        for path, methods, _, _ in iter_routes(app)
        if path.startswith("/api/v1")
        for method in methods
        if method != "HEAD"
    }


def test_every_field_and_route_is_guarded(server) -> None:
    assert _routes(server.app), "no /api/v1 route found: the route walker is broken"
    assert unguarded_fields(build_schema()) == []
    assert unguarded_routes(server.app) == []


# Guarded, rows being written (the identity sweep): must shrink to nothing.
PENDING_ROWS: set[str] = set()


def test_every_field_and_route_has_a_row(server) -> None:
    covered = {c for case in CASES for c in case.covers}
    existing = _root_fields() | _routes(server.app)
    assert sorted(existing - covered - PENDING_ROWS) == [], "add rows to tests/<domain>/enforcement_cases.py"
    assert sorted(PENDING_ROWS & covered) == [], "covered now: remove from PENDING_ROWS"
    assert sorted(covered - existing) == [], "rows name fields or routes that do not exist"


UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _normal(message: str, key: str) -> str:
    return UUID.sub("?", message.replace(key, "?"))


@pytest.fixture(scope="module")
def world(server) -> World:
    from adaptive_engine import Adaptive

    admin = Adaptive(server.base_url, api_key=server.api_key, max_retries=0)
    built = build_world(server, admin)
    for case in CASES:
        if case.setup is not None:
            case.setup(built)
    return built


@pytest.mark.parametrize("case", CASES, ids=[c.label for c in CASES])
def test_row(world: World, case: Case) -> None:
    for who in case.denied_as:
        before = case.snapshot(world.admin, world) if case.snapshot else None
        with pytest.raises((PermissionDeniedError, NotFoundError)):
            case.run(world.client(who), world)
        if case.snapshot:
            assert case.snapshot(world.admin, world) == before, f"{case.label} as {who} changed something"
    if case.on_use_case is not None:
        missing = f"missing-{world.fresh('uc')}"
        before = case.snapshot(world.admin, world) if case.snapshot else None
        with pytest.raises(NotFoundError) as hidden:
            case.on_use_case(world.client("outsider"), world, world.uc_a)
        with pytest.raises(NotFoundError) as absent:
            case.on_use_case(world.client("outsider"), world, missing)
        assert _normal(hidden.value.message, world.uc_a) == _normal(absent.value.message, missing), "existence leaks"
        if case.snapshot:
            assert case.snapshot(world.admin, world) == before
    for who in case.allowed_as:
        if case.allowed_errors:
            try:
                case.run(world.client(who), world)
            except case.allowed_errors:
                pass
        else:
            case.run(world.client(who), world)
