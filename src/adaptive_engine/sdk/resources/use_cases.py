from __future__ import annotations

import builtins
from typing import Any

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL
from adaptive_engine.sdk.types import UseCase

USE_CASE_FIELDS = """
  id key name description createdAt permissions
  metrics { id key name kind description scoringType createdAt }
  modelServices {
    id key name isDefault desiredOnline createdAt
    model { id key name online error isExternal providerName isAdapter isTraining createdAt size
            computeConfig { tp kvCacheLen maxSeqLen } }
    systemPromptTemplate { id name template arguments createdAt createdBy family version }
  }
  shares { isOwner team { id key name createdAt } role { id key name createdAt permissions } }
  isArchived gradientColor metadata { emoji { native } } settings { defaultMetric { key } }
"""


def _look(emoji: str | None, gradient_color: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if emoji is not None:
        out["metadata"] = {"emoji": {"native": emoji}}
    if gradient_color is not None:
        out["gradientColor"] = gradient_color
    return out


class UseCases(Resource[C]):
    """Use cases: the unit that owns models, traffic, feedback, datasets and jobs."""

    @operation
    def create(
        self,
        key: str,
        name: str | None = None,
        description: str | None = None,
        team: str | None = None,
        *,
        emoji: str | None = None,
        gradient_color: str | None = None,
        default_metric: str | None = None,
    ) -> Returns[UseCase]:
        """Create a use case. ``name`` defaults to the key; ``team`` (a team key) owns it; ``default_metric``
        (a feedback key, linked to the use case) is the metric the console opens on."""
        query = (
            f"mutation CreateUseCase($input: UseCaseCreate!) {{ createUseCase(input: $input) {{ {USE_CASE_FIELDS} }} }}"
        )
        fields = {
            "key": key,
            "name": name or key,
            "description": description,
            "team": team,
            **_look(emoji, gradient_color),
        }
        if default_metric is not None:
            fields["settings"] = {"defaultMetric": default_metric}
        data = yield GraphQL(query, {"input": fields})
        return UseCase.model_validate(data["createUseCase"])

    @operation
    def update(
        self,
        use_case: str | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
        emoji: str | None = None,
        gradient_color: str | None = None,
        default_metric: str | None = None,
        is_archived: bool | None = None,
    ) -> Returns[UseCase]:
        """Change what is given (None: unchanged). ``is_archived=True`` archives: the use case stays readable
        and takes no new traffic until it is unarchived. Needs use_case:write."""
        return (
            yield from self._update(
                use_case,
                name=name,
                description=description,
                emoji=emoji,
                gradient_color=gradient_color,
                default_metric=default_metric,
                is_archived=is_archived,
            )
        )

    @operation
    def archive(self, use_case: str | None = None) -> Returns[UseCase]:
        """Archive a use case (see :meth:`update`)."""
        return (yield from self._update(use_case, is_archived=True))

    @operation
    def unarchive(self, use_case: str | None = None) -> Returns[UseCase]:
        """Take a use case out of the archive: it takes traffic again."""
        return (yield from self._update(use_case, is_archived=False))

    def _update(
        self,
        use_case: str | None,
        *,
        name: str | None = None,
        description: str | None = None,
        emoji: str | None = None,
        gradient_color: str | None = None,
        default_metric: str | None = None,
        is_archived: bool | None = None,
    ) -> Returns[UseCase]:
        query = (
            "mutation UpdateUseCase($idOrKey: IdOrKey!, $input: UseCaseUpdate!) {"
            f" updateUseCase(idOrKey: $idOrKey, input: $input) {{ {USE_CASE_FIELDS} }} }}"
        )
        fields: dict[str, Any] = {
            "name": name,
            "description": description,
            "isArchived": is_archived,
            **_look(emoji, gradient_color),
        }
        if default_metric is not None:
            fields["settings"] = {"defaultMetric": default_metric}
        data = yield GraphQL(query, {"idOrKey": self.use_case_key(use_case), "input": fields})
        return UseCase.model_validate(data["updateUseCase"])

    @operation
    def get(self, use_case: str | None = None) -> Returns[UseCase]:
        """Details of a use case (the client's default when not given)."""
        query = f"query UseCase($key: IdOrKey!) {{ useCase(idOrKey: $key) {{ {USE_CASE_FIELDS} }} }}"
        data = yield GraphQL(query, {"key": self.use_case_key(use_case)})
        return UseCase.model_validate(data["useCase"])

    @operation
    def list(self, is_archived: bool | None = None) -> Returns[list[UseCase]]:
        """Every use case the caller can see; ``is_archived``: only the archived (True) or active (False) ones."""
        query = f"query UseCases($filter: UseCaseFilter) {{ useCases(filter: $filter) {{ {USE_CASE_FIELDS} }} }}"
        data = yield GraphQL(query, {"filter": {"isArchived": is_archived} if is_archived is not None else None})
        return [UseCase.model_validate(u) for u in data["useCases"]]

    @operation
    def share(self, use_case: str, team: str, role: str, is_owner: bool = False) -> Returns[UseCase]:
        """Share a use case with ``team`` under ``role`` (or change that team's role). Needs use_case:share."""
        current = yield from self._shares(use_case)
        shares = [s for s in current if s["team"] != team]
        shares.append({"team": team, "role": role, "isOwner": is_owner})
        return (yield from self._set_shares(use_case, shares))

    @operation
    def unshare(self, use_case: str, team: str) -> Returns[UseCase]:
        """Remove ``team``'s access to a use case. Needs use_case:share."""
        current = yield from self._shares(use_case)
        shares = [s for s in current if s["team"] != team]
        return (yield from self._set_shares(use_case, shares))

    def _shares(self, use_case: str) -> Returns[builtins.list[dict[str, Any]]]:
        query = (
            "query UseCaseShares($key: IdOrKey!) { useCase(idOrKey: $key) { shares { isOwner team { key }"
            " role { key } } } }"
        )
        data = yield GraphQL(query, {"key": use_case})
        return [
            {"team": s["team"]["key"], "role": s["role"]["key"], "isOwner": s["isOwner"]}
            for s in data["useCase"]["shares"]
        ]

    def _set_shares(self, use_case: str, shares: builtins.list[dict[str, Any]]) -> Returns[UseCase]:
        query = (
            "mutation ShareUseCase($idOrKey: IdOrKey!, $input: UseCaseShares!) {"
            f" shareUseCase(idOrKey: $idOrKey, input: $input) {{ {USE_CASE_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"idOrKey": use_case, "input": {"shares": shares}})
        return UseCase.model_validate(data["shareUseCase"])
