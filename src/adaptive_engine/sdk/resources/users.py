from __future__ import annotations

from adaptive_engine.sdk._base import Resource, operation
from adaptive_engine.sdk._requests import GraphQL
from adaptive_engine.sdk.types import User

USER_FIELDS = """
  id email name createdAt
  teams { team { id key name createdAt } role { id key name createdAt permissions } }
"""


class Users(Resource):
    """Users of the deployment."""

    @operation
    def me(self):
        """The caller."""
        data = yield GraphQL(f"query Me {{ me {{ {USER_FIELDS} }} }}")
        return User.model_validate(data["me"])
