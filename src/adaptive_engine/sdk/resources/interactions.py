from __future__ import annotations

import uuid
from typing import Any, Literal

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL, Rest
from adaptive_engine.sdk.types import AddInteractionsResponse, Interaction, InteractionGroupPage, InteractionPage

_METRIC = "id key name kind description scoringType createdAt hasDirectFeedbacks hasComparisonFeedbacks"
_SIDE = "id completion source model { id key name }"
INTERACTION_FIELDS = f"""
  id completion source createdAt sessionId userId promptHash abCampaignId userMetadata
  chatMessages {{ role content }}
  model {{ id key name }}
  directFeedbacks {{ id value reason details userId createdAt metric {{ {_METRIC} }} }}
  comparisonFeedbacks {{ id createdAt tied usecase {{ id key name }} metric {{ id key name }}
    preferedCompletion {{ {_SIDE} }} otherCompletion {{ {_SIDE} }} }}
  labels {{ key value }}
  metadata {{ parameters timings system usage {{ completionTokens promptTokens totalTokens }} }}
"""
PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor }"
NUMERIC = ("eq", "neq", "gt", "gte", "lt", "lte")


def filter_input(use_case: str, filters: dict[str, Any] | None) -> dict[str, Any]:
    """The ListCompletionsFilterInput for the SDK's snake_case filters."""
    out: dict[str, Any] = {"useCase": use_case}
    filters = dict(filters or {})
    simple = {
        "models": "models",
        "session_id": "sessionId",
        "user_id": "userId",
        "completion_id": "completionId",
        "prompt_hash": "promptHash",
        "source": "source",
        "completion": "completion",
        "prompt": "prompt",
        "ab_campaign": "abCampaign",
    }
    for name, wire in simple.items():
        if filters.get(name) is not None:
            value = filters.pop(name)
            out[wire] = [str(v) for v in value] if name in ("models", "source") else str(value)
    if "timerange" in filters:
        timerange = filters.pop("timerange")
        out["timerange"] = {"from": timerange.get("from_", timerange.get("from")), "to": timerange["to"]}
    if "labels" in filters:
        out["labels"] = [
            {"key": lbl["key"], **({"value": list(lbl["value"])} if lbl.get("value") else {})}
            for lbl in filters.pop("labels")
        ]
    if "comparisons" in filters:
        out["comparisons"] = [{"metric": c["metric"]} for c in filters.pop("comparisons")]
    if "feedbacks" in filters:
        feedbacks = []
        for fb in filters.pop("feedbacks"):
            item: dict[str, Any] = {"metric": fb["metric"]}
            bounds = {**(fb.get("value") or {}), **{k: fb[k] for k in NUMERIC if k in fb}}
            item.update({k: v for k, v in bounds.items() if v is not None})
            if fb.get("reasons"):
                item["reasons"] = list(fb["reasons"])
            if fb.get("user") is not None:
                item["user"] = str(fb["user"])
            feedbacks.append(item)
        out["feedbacks"] = feedbacks
    if filters:
        raise ValueError(f"unknown interaction filters: {sorted(filters)}")
    return out


class Interactions(Resource[C]):
    """Production traffic: log interactions served elsewhere, read them back, filtered or grouped."""

    @operation
    def create(
        self,
        messages: list[dict[str, str]],
        completion: str,
        model: str | None = None,
        feedbacks: list[dict[str, Any]] | None = None,
        user: str | uuid.UUID | None = None,
        session_id: str | uuid.UUID | None = None,
        use_case: str | None = None,
        ab_campaign: str | None = None,
        labels: dict[str, str] | None = None,
        created_at: str | None = None,
    ) -> Returns[AddInteractionsResponse]:
        """Log an interaction (prompt ``messages`` and its ``completion``), with optional inline
        feedbacks ``[{"feedback_key", "value", "details"?}]``. Returns the completion and session ids."""
        body: dict[str, Any] = {
            "use_case": self.use_case_key(use_case),
            "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
            "completion": completion,
        }
        optional = {
            "model_service": model,
            "user": str(user) if user is not None else None,
            "session_id": str(session_id) if session_id is not None else None,
            "ab_campaign": ab_campaign,
            "labels": labels,
            "created_at": created_at,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        if feedbacks:
            body["feedbacks"] = [
                {
                    "metric": f["feedback_key"],
                    "value": f["value"],
                    **({"details": f["details"]} if f.get("details") else {}),
                }
                for f in feedbacks
            ]
        data = yield Rest("POST", "/interactions", json=body)
        return AddInteractionsResponse.model_validate(data)

    @operation
    def get(self, completion_id: str, use_case: str | None = None) -> Returns[Interaction]:
        """One interaction with its feedback."""
        query = (
            "query DescribeInteraction($useCase: IdOrKey!, $id: UUID!) { completion(useCase: $useCase,"
            f" id: $id) {{ {INTERACTION_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"useCase": self.use_case_key(use_case), "id": str(completion_id)})
        return Interaction.model_validate(data["completion"])

    @operation
    def list(
        self,
        order: list[dict[str, str]] | None = None,
        filters: dict[str, Any] | None = None,
        page: dict[str, Any] | None = None,
        group_by: Literal["model", "prompt"] | None = None,
        use_case: str | None = None,
    ) -> Returns[InteractionPage | InteractionGroupPage]:
        """Interactions of the use case, newest first unless ``order`` names one field and ASC/DESC:
        created_at, id, model, source, prompt_hash, completion, finish_reason, prompt_tokens,
        completion_tokens, latency_ms or cost (ties by id, NULLs last ascending). ``filters``: models,
        timerange {from_, to}, session_id, user_id, completion_id, labels [{key, value?}],
        feedbacks [{metric, value: {gt, ...}}], comparisons [{metric}], source, prompt_hash, completion / prompt
        (text contains), ab_campaign.
        ``page``: first / after or last / before (cursors from ``page_info``). With ``group_by``, the
        groups (by model or prompt) with counts and feedback statistics."""
        variables: dict[str, Any] = {
            "filter": filter_input(self.use_case_key(use_case), filters),
            "page": dict(page or {}),
        }
        if order:
            variables["order"] = [{"field": o["field"], "order": o["order"].upper()} for o in order]
        if group_by:
            if group_by not in ("model", "prompt"):
                raise ValueError(f"group_by must be 'model' or 'prompt', not {group_by!r}")
            variables["groupBy"] = group_by.upper()
            query = (
                "query ListGroupedInteractions($filter: ListCompletionsFilterInput!, $groupBy: CompletionGroupBy!,"
                " $page: CursorPageInput, $order: [OrderPair!]) {"
                " completionsGrouped(groupBy: $groupBy, filter: $filter, page: $page, order: $order) {"
                f" totalCount groupBy {PAGE_INFO} nodes {{ key count"
                f" directFeedbacksStats {{ feedbacks average max min stddev sum metric {{ {_METRIC} }} }}"
                f" completions {{ {PAGE_INFO} nodes {{ {INTERACTION_FIELDS} }} }} }} }} }}"
            )
            data = yield GraphQL(query, variables)
            return InteractionGroupPage.model_validate(data["completionsGrouped"])
        query = (
            "query ListInteractions($filter: ListCompletionsFilterInput!, $page: CursorPageInput,"
            " $order: [OrderPair!]) {"
            f" completions(filter: $filter, page: $page, order: $order) {{ totalCount {PAGE_INFO}"
            f" nodes {{ {INTERACTION_FIELDS} }} }} }}"
        )
        data = yield GraphQL(query, variables)
        return InteractionPage.model_validate(data["completions"])

    @operation
    def export(
        self,
        path: str,
        filters: dict[str, Any] | None = None,
        format: str = "jsonl",
        as_dataset: bool = False,
        use_case: str | None = None,
    ) -> Returns[str]:
        """Save the interactions ``filters`` select (the filters of ``list``) to ``path`` as JSONL or CSV, oldest
        first, each with its feedback; ``as_dataset``: as PROMPT_COMPLETION dataset rows. Returns the path."""
        import json

        use_case = self.use_case_key(use_case)
        params = {"use_case": use_case, "format": format, "filter": json.dumps(filter_input(use_case, filters))}
        if as_dataset:
            params["as_dataset"] = "true"
        content = yield Rest("GET", "/completions/export", params=params, raw=True)
        with open(path, "wb") as out:
            out.write(content)
        return path

    @operation
    def update_completion(
        self,
        completion_id: str | uuid.UUID,
        add_labels: dict[str, str] | None = None,
        remove_labels: dict[str, str] | None = None,
        set_labels: dict[str, str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Returns[Interaction]:
        """Curate a logged completion: add labels (a key's value replaced), remove ``key: value`` labels (each
        must be on it), or replace them all with ``set_labels``; set its metadata. Returns the interaction."""

        def pairs(labels: dict[str, str]) -> list[dict[str, str]]:
            return [{"key": k, "value": v} for k, v in labels.items()]

        body: dict[str, Any] = {"id": str(completion_id)}
        for wire, labels in (("addLabels", add_labels), ("removeLabels", remove_labels), ("setLabels", set_labels)):
            if labels is not None:
                body[wire] = pairs(labels)
        if metadata is not None:
            body["metadata"] = metadata
        query = (
            "mutation UpdateCompletion($input: UpdateCompletion!) { updateCompletion(input: $input) {"
            f" {INTERACTION_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"input": body})
        return Interaction.model_validate(data["updateCompletion"])
