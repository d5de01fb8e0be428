from __future__ import annotations

from collections.abc import Sequence

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL
from adaptive_engine.sdk.types import TeamMember, User

USER_FIELDS = """
  id email name createdAt
  teams { team { id key name createdAt } role { id key name createdAt permissions } }
"""


class Users(Resource[C]):
    """Users of the deployment and their team memberships."""

    @operation
    def me(self) -> Returns[User]:
        """The caller."""
        data = yield GraphQL(f"query Me {{ me {{ {USER_FIELDS} }} }}")
        return User.model_validate(data["me"])

    @operation
    def list(self) -> Returns[list[User]]:
        """Every user of the deployment (needs user:manage)."""
        data = yield GraphQL(f"query ListUsers {{ users {{ {USER_FIELDS} }} }}")
        return [User.model_validate(u) for u in data["users"]]

    @operation
    def create(self, email: str, name: str, teams_with_role: Sequence[tuple[str, str]]) -> Returns[User]:
        """Create a user, member of each (team_key, role_key) given."""
        query = f"mutation CreateUser($input: UserCreate!) {{ createUser(input: $input) {{ {USER_FIELDS} }} }}"
        teams = [{"team": team, "role": role} for team, role in teams_with_role]
        data = yield GraphQL(query, {"input": {"email": email, "name": name, "teams": teams}})
        return User.model_validate(data["createUser"])

    @operation
    def delete(self, email: str) -> Returns[User]:
        """Delete a user (by email or id). The last admin cannot be deleted."""
        query = f"mutation DeleteUser($user: IdOrKey!) {{ deleteUser(user: $user) {{ {USER_FIELDS} }} }}"
        data = yield GraphQL(query, {"user": email})
        return User.model_validate(data["deleteUser"])

    @operation
    def add_to_team(self, email: str, team: str, role: str) -> Returns[TeamMember]:
        """Make the user a member of ``team`` with ``role`` (changes the role when already a member)."""
        query = (
            "mutation UpdateUser($input: TeamMemberSet!) { setTeamMember(input: $input) {"
            f" user {{ {USER_FIELDS} }} team {{ id key name createdAt }}"
            " role { id key name createdAt permissions } } }"
        )
        data = yield GraphQL(query, {"input": {"user": email, "team": team, "role": role}})
        return TeamMember.model_validate(data["setTeamMember"])

    @operation
    def remove_from_team(self, email: str, team: str) -> Returns[User]:
        """Remove the user from ``team``."""
        query = (
            "mutation RemoveTeamMember($input: TeamMemberRemove!) {"
            f" removeTeamMember(input: $input) {{ {USER_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"input": {"user": email, "team": team}})
        return User.model_validate(data["removeTeamMember"])
