from __future__ import annotations

from adaptive_engine.sdk._base import Resource, operation
from adaptive_engine.sdk._requests import GraphQL
from adaptive_engine.sdk.types import UseCase

USE_CASE_FIELDS = """
  id key name description createdAt permissions
  metrics { id key name kind description scoringType createdAt }
  modelServices {
    id key name isDefault desiredOnline createdAt
    model { id key name online error isExternal providerName isAdapter isTraining createdAt size
            computeConfig { tp kvCacheLen maxSeqLen } }
  }
  shares { isOwner team { id key name createdAt } role { id key name createdAt permissions } }
"""


class UseCases(Resource):
    """Use cases: the unit that owns models, traffic, feedback, datasets and jobs."""

    @operation
    def create(self, key: str, name: str | None = None, description: str | None = None, team: str | None = None):
        """Create a use case. ``name`` defaults to the key; ``team`` (a team key) owns it."""
        query = f"mutation CreateUseCase($input: UseCaseCreate!) {{ createUseCase(input: $input) {{ {USE_CASE_FIELDS} }} }}"
        data = yield GraphQL(query, {"input": {"key": key, "name": name or key, "description": description, "team": team}})
        return UseCase.model_validate(data["createUseCase"])

    @operation
    def get(self, use_case: str | None = None):
        """Details of a use case (the client's default when not given)."""
        query = f"query UseCase($key: IdOrKey!) {{ useCase(idOrKey: $key) {{ {USE_CASE_FIELDS} }} }}"
        data = yield GraphQL(query, {"key": self.use_case_key(use_case)})
        return UseCase.model_validate(data["useCase"])

    @operation
    def list(self):
        """Every use case the caller can see."""
        data = yield GraphQL(f"query UseCases {{ useCases {{ {USE_CASE_FIELDS} }} }}")
        return [UseCase.model_validate(u) for u in data["useCases"]]

    @operation
    def share(self, use_case: str, team: str, role: str, is_owner: bool = False):
        """Share a use case with ``team`` under ``role`` (or change that team's role). Needs use_case:share."""
        current = yield from self._shares(use_case)
        shares = [s for s in current if s["team"] != team]
        shares.append({"team": team, "role": role, "isOwner": is_owner})
        return (yield from self._set_shares(use_case, shares))

    @operation
    def unshare(self, use_case: str, team: str):
        """Remove ``team``'s access to a use case. Needs use_case:share."""
        current = yield from self._shares(use_case)
        shares = [s for s in current if s["team"] != team]
        return (yield from self._set_shares(use_case, shares))

    def _shares(self, use_case: str):
        query = "query UseCaseShares($key: IdOrKey!) { useCase(idOrKey: $key) { shares { isOwner team { key } role { key } } } }"
        data = yield GraphQL(query, {"key": use_case})
        return [
            {"team": s["team"]["key"], "role": s["role"]["key"], "isOwner": s["isOwner"]}
            for s in data["useCase"]["shares"]
        ]

    def _set_shares(self, use_case: str, shares: list):
        query = (
            "mutation ShareUseCase($idOrKey: IdOrKey!, $input: UseCaseShares!) {"
            f" shareUseCase(idOrKey: $idOrKey, input: $input) {{ {USE_CASE_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"idOrKey": use_case, "input": {"shares": shares}})
        return UseCase.model_validate(data["shareUseCase"])
