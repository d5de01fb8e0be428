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
