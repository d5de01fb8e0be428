from __future__ import annotations

import uuid
from typing import Any, Literal

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL, Rest
from adaptive_engine.sdk.types import ComparisonOutput, DirectFeedback, FeedbackKey, FeedbackKeyDetails, FeedbackOutput

KEY_FIELDS = "id key name kind description scoringType createdAt hasDirectFeedbacks hasComparisonFeedbacks"
DIRECT_FEEDBACK_FIELDS = f"id value reason details userId createdAt metric {{ {KEY_FIELDS} }}"
LINKED_FIELDS = "id key name kind description scoringType createdAt"


def _side(completion: Any) -> Any:
    """A preference side: a completion id, or {"model": ..., "text": ...}."""
    if isinstance(completion, dict):
        missing = {"model", "text"} - set(completion)
        if missing:
            raise ValueError(
                f"a completion given as text needs the keys 'model' and 'text' (missing {sorted(missing)})"
            )
        return {"model": completion["model"], "text": completion["text"]}
    return str(completion)


class Feedback(Resource[C]):
    """Feedback keys, and feedback on interactions: metric values and preferences."""

    @operation
    def register_key(
        self,
        key: str,
        kind: Literal["scalar", "bool"],
        scoring_type: Literal["higher_is_better", "lower_is_better"] = "higher_is_better",
        name: str | None = None,
        description: str | None = None,
    ) -> Returns[FeedbackKeyDetails]:
        """Register a feedback key. A ``bool`` key takes 0, 1, True or False; a ``scalar`` key any number."""
        query = f"mutation CreateMetric($input: MetricCreate!) {{ createMetric(input: $input) {{ {KEY_FIELDS} }} }}"
        variables = {
            "input": {
                "key": key,
                "name": name or key,
                "kind": kind.upper(),
                "scoringType": scoring_type.upper(),
                "description": description,
            }
        }
        data = yield GraphQL(query, variables)
        return FeedbackKeyDetails.model_validate(data["createMetric"])

    @operation
    def list_keys(self) -> Returns[list[FeedbackKeyDetails]]:
        """Every feedback key, with the use cases it is linked to."""
        data = yield GraphQL(
            f"query ListMetrics {{ metrics {{ {KEY_FIELDS} useCases {{ id key name description }} }} }}"
        )
        return [FeedbackKeyDetails.model_validate(m) for m in data["metrics"]]

    @operation
    def get_key(self, feedback_key: str) -> Returns[FeedbackKeyDetails]:
        """A feedback key by key or id."""
        query = (
            f"query DescribeMetric($input: IdOrKey!) {{ metric(idOrKey: $input) {{ {KEY_FIELDS} useCases"
            " { id key name description } } }"
        )
        data = yield GraphQL(query, {"input": feedback_key})
        return FeedbackKeyDetails.model_validate(data["metric"])

    @operation
    def link(self, feedback_key: str, use_case: str | None = None) -> Returns[FeedbackKey]:
        """Link a feedback key to the use case (the client's default when not given)."""
        query = f"mutation LinkMetric($input: MetricLink!) {{ linkMetric(input: $input) {{ {LINKED_FIELDS} }} }}"
        data = yield GraphQL(query, {"input": {"useCase": self.use_case_key(use_case), "metric": feedback_key}})
        return FeedbackKey.model_validate(data["linkMetric"])

    @operation
    def unlink(self, feedback_key: str, use_case: str | None = None) -> Returns[str]:
        """Unlink a feedback key from the use case; returns the key."""
        query = "mutation UnlinkMetric($input: MetricUnlink!) { unlinkMetric(input: $input) }"
        data = yield GraphQL(query, {"input": {"useCase": self.use_case_key(use_case), "metric": feedback_key}})
        return str(data["unlinkMetric"])

    @operation
    def log_metric(
        self,
        value: bool | float | int,
        completion_id: str | uuid.UUID,
        feedback_key: str,
        user: str | uuid.UUID | None = None,
        details: str | None = None,
    ) -> Returns[FeedbackOutput]:
        """Log a metric value on a completion; returns its ``feedback_id`` once stored."""
        body = {"value": value, "completion_id": str(completion_id), "metric": feedback_key}
        if user is not None:
            body["user_id"] = str(user)
        if details is not None:
            body["details"] = details
        data = yield Rest("POST", "/feedback", json=body)
        return FeedbackOutput.model_validate(data)

    @operation
    def log_preference(
        self,
        feedback_key: str,
        preferred_completion: str | uuid.UUID | dict[str, str],
        other_completion: str | uuid.UUID | dict[str, str],
        user: str | uuid.UUID | None = None,
        messages: list[dict[str, str]] | None = None,
        tied: Literal["good", "bad"] | None = None,
        use_case: str | None = None,
    ) -> Returns[ComparisonOutput]:
        """Log that one completion is preferred to another (or that they tie, ``good`` or ``bad``).
        Each side is a completion id or ``{"model": key, "text": completion}``; text sides need
        ``messages`` unless the other side is a logged completion."""
        body: dict[str, Any] = {
            "metric": feedback_key,
            "preferred_completion": _side(preferred_completion),
            "other_completion": _side(other_completion),
        }
        use_case = use_case or self._client.default_use_case
        if use_case is not None:
            body["use_case"] = use_case
        if user is not None:
            body["user_id"] = str(user)
        if messages is not None:
            body["messages"] = [{"role": m["role"], "content": m["content"]} for m in messages]
        if tied is not None:
            body["tied"] = tied
        data = yield Rest("POST", "/comparison", json=body)
        return ComparisonOutput.model_validate(data)

    @operation
    def add_direct_feedback(
        self,
        completion_id: str | uuid.UUID,
        feedback_key: str,
        value: Any,
        reason: str | None = None,
        details: str | None = None,
        user: str | uuid.UUID | None = None,
    ) -> Returns[DirectFeedback]:
        """Add a metric value to a logged completion by hand; returns the feedback."""
        body: dict[str, Any] = {"value": value}
        body.update(
            {
                k: v
                for k, v in {"reason": reason, "details": details, "userId": str(user) if user else None}.items()
                if v is not None
            }
        )
        query = (
            f"mutation Add($c: UUID!, $m: IdOrKey!, $i: FeedbackAddInput!) {{ addDirectFeedback(completionId: $c,"
            f" metricId: $m, input: $i) {{ {DIRECT_FEEDBACK_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"c": str(completion_id), "m": feedback_key, "i": body})
        return DirectFeedback.model_validate(data["addDirectFeedback"])

    @operation
    def update_feedback(
        self, feedback_id: str | uuid.UUID, value: Any = None, details: str | None = None
    ) -> Returns[DirectFeedback]:
        """Correct a feedback value (or its details); statistics follow. Returns the feedback."""
        body = {k: v for k, v in {"value": value, "details": details}.items() if v is not None}
        query = (
            "mutation Update($id: UUID!, $i: FeedbackUpdateInput!) { updateFeedback(id: $id, input: $i)"
            f" {{ {DIRECT_FEEDBACK_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"id": str(feedback_id), "i": body})
        return DirectFeedback.model_validate(data["updateFeedback"])
