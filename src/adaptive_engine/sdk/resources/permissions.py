from __future__ import annotations

from adaptive_engine.sdk._base import Resource, operation
from adaptive_engine.sdk._requests import GraphQL


class Permissions(Resource):
    """The permission catalogue."""

    @operation
    def list(self):
        """Every permission identifier (e.g. ``use_case:read``)."""
        data = yield GraphQL("query ListPermissions { permissions }")
        return list(data["permissions"])
