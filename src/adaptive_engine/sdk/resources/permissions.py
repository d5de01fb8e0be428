from __future__ import annotations

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL


class Permissions(Resource[C]):
    """The permission catalogue."""

    @operation
    def list(self) -> Returns[list[str]]:
        """Every permission identifier (e.g. ``use_case:read``)."""
        data = yield GraphQL("query ListPermissions { permissions }")
        return [str(p) for p in data["permissions"]]
