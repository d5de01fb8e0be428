from __future__ import annotations

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL
from adaptive_engine.sdk.types import Team

TEAM_FIELDS = "id key name createdAt"


class Teams(Resource[C]):
    """Teams: use cases are shared with teams; members get the rights of their role in the team."""

    @operation
    def list(self) -> Returns[list[Team]]:
        """Every team."""
        data = yield GraphQL(f"query ListTeams {{ teams {{ {TEAM_FIELDS} }} }}")
        return [Team.model_validate(t) for t in data["teams"]]

    @operation
    def create(self, key: str, name: str | None = None) -> Returns[Team]:
        """Create a team; ``name`` defaults to the key."""
        query = f"mutation CreateTeam($input: TeamCreate!) {{ createTeam(input: $input) {{ {TEAM_FIELDS} }} }}"
        data = yield GraphQL(query, {"input": {"key": key, "name": name or key}})
        return Team.model_validate(data["createTeam"])
