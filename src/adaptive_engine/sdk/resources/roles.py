from __future__ import annotations

import builtins

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL
from adaptive_engine.sdk.types import Role

ROLE_FIELDS = "id key name createdAt permissions"


class Roles(Resource[C]):
    """Roles: named sets of permissions from the catalogue (see ``permissions.list()``)."""

    @operation
    def list(self) -> Returns[list[Role]]:
        """Every role, built-in (admin, editor, viewer) and custom."""
        data = yield GraphQL(f"query ListRoles {{ roles {{ {ROLE_FIELDS} }} }}")
        return [Role.model_validate(r) for r in data["roles"]]

    @operation
    def create(self, key: str, permissions: builtins.list[str], name: str | None = None) -> Returns[Role]:
        """Create a role; unknown permissions are refused. ``name`` defaults to the key."""
        query = f"mutation CreateRole($input: RoleCreate!) {{ createRole(input: $input) {{ {ROLE_FIELDS} }} }}"
        data = yield GraphQL(query, {"input": {"key": key, "name": name or key, "permissions": list(permissions)}})
        return Role.model_validate(data["createRole"])
