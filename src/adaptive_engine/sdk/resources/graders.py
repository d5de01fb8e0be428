from __future__ import annotations

import builtins
from typing import Any, Literal

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL, Rest
from adaptive_engine.sdk.types import (
    DatasetValidation,
    EndpointOffline,
    EndpointOnline,
    Grader,
    GradeResult,
    PrebuiltCriteria,
    PrebuiltCriteriaInfo,
)

_MODEL = (
    "id key name online error isExternal providerName isAdapter isTraining createdAt size computeConfig {"
    " tp kvCacheLen maxSeqLen }"
)
GRADER_FIELDS = f"""
  id name key locked graderType onlineSampleRate createdAt updatedAt
  graderConfig {{
    __typename
    ... on JudgeConfigOutput {{
      criteria examples {{ input {{ role content }} output pass reasoning }} model {{ {_MODEL} }}
    }}
    ... on PrebuiltConfigOutput {{
      prebuiltCriteria: criteria {{ key name feedbackKey description }} model {{ {_MODEL} }}
    }}
    ... on RemoteConfigOutput {{ url version description name }}
    ... on CustomConfigOutput {{ customDescription: description hasCode }}
  }}
  useCase {{ id key name }}
  metric {{ id key name kind description scoringType createdAt }}
"""

PrebuiltType = Literal["FAITHFULNESS", "ANSWER_RELEVANCY", "CONTEXT_RELEVANCY"]


def _grader(raw: dict[str, Any]) -> Grader:
    config = dict(raw["graderConfig"])
    # The two aliases avoid clashing field types in one selection; give the objects their plain names back.
    if "prebuiltCriteria" in config:
        config["criteria"] = config.pop("prebuiltCriteria")
    if "customDescription" in config:
        config["description"] = config.pop("customDescription")
    return Grader.model_validate({**raw, "graderConfig": config})


def _examples(examples: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    parsed = []
    for i, ex in enumerate(examples or []):
        missing = [k for k in ("input", "output", "passes") if k not in ex]
        if missing:
            raise ValueError(f"example {i} lacks {', '.join(missing)}: each needs 'input', 'output' and 'passes'")
        parsed.append(
            {
                "input": [{"role": t["role"], "content": t["content"]} for t in ex["input"]],
                "output": ex["output"],
                "pass": bool(ex["passes"]),
                "reasoning": ex.get("reasoning"),
            }
        )
    return parsed


class GraderCreator(Resource[C]):
    """``graders.create``: one method per kind of grader."""

    def _create(
        self,
        use_case: str | None,
        name: str,
        key: str,
        grader_type: str,
        config: dict[str, Any],
        metric: dict[str, Any] | None,
    ) -> Returns[Grader]:
        query = (
            f"mutation CreateGrader($useCase: IdOrKey!, $input: GraderCreateInput!) "
            f"{{ createGrader(useCase: $useCase, input: $input) {{ {GRADER_FIELDS} }} }}"
        )
        variables = {
            "useCase": self.use_case_key(use_case),
            "input": {"name": name, "key": key, "graderType": grader_type, "graderConfig": config, "metric": metric},
        }
        data = yield GraphQL(query, variables)
        return _grader(data["createGrader"])

    @operation
    def binary_judge(
        self,
        *,
        key: str,
        criteria: str,
        judge_model: str,
        feedback_key: str,
        name: str | None = None,
        examples: list[dict[str, Any]] | None = None,
        use_case: str | None = None,
    ) -> Returns[Grader]:
        """An LLM judge scoring PASS (1) / FAIL (0) / NA on ``criteria``, run on the registered chat model
        ``judge_model``. ``examples``: few-shot annotations ``{"input": [{"role", "content"}], "output": str,
        "passes": bool, "reasoning": str | None}``. Writes to ``feedback_key`` (created if missing)."""
        config = {"judge": {"model": judge_model, "criteria": criteria, "examples": _examples(examples)}}
        return (yield from self._create(use_case, name or key, key, "JUDGE", config, {"existing": feedback_key}))

    @operation
    def prebuilt_judge(
        self, *, key: str, type: PrebuiltType, judge_model: str, name: str | None = None, use_case: str | None = None
    ) -> Returns[Grader]:
        """A prebuilt judge (FAITHFULNESS, ANSWER_RELEVANCY or CONTEXT_RELEVANCY) on ``judge_model``; it writes
        to the feedback key of its criteria (e.g. ``faithfulness``)."""
        config = {"prebuilt": {"key": type, "model": judge_model}}
        return (yield from self._create(use_case, name or key, key, "PREBUILT", config, None))

    @operation
    def external_endpoint(
        self, *, key: str, url: str, feedback_key: str, name: str | None = None, use_case: str | None = None
    ) -> Returns[Grader]:
        """A grader backed by a reward server at ``url`` (the ``adaptive_sdk.external`` protocol)."""
        config = {"remote": {"url": url}}
        return (yield from self._create(use_case, name or key, key, "REMOTE", config, {"existing": feedback_key}))

    @operation
    def custom(
        self,
        *,
        key: str,
        feedback_key: str,
        description: str | None = None,
        name: str | None = None,
        use_case: str | None = None,
        code: str | None = None,
    ) -> Returns[Grader]:
        """A custom grader. With ``code`` (Python source defining ``grade(messages, completion, metadata)``
        that returns a number, a bool or ``{"score", "reasoning"}``) the server runs it in a sandboxed
        subprocess; without code it is a declaration scored by the recipe that uses it."""
        config = {"custom": {"description": description, "code": code}}
        return (yield from self._create(use_case, name or key, key, "CUSTOM", config, {"existing": feedback_key}))


class Graders(Resource[C]):
    """Graders: judges, prebuilt judges, external reward servers and custom functions that score completions."""

    def __init__(self, client: C) -> None:
        super().__init__(client)
        self.create: GraderCreator[C] = GraderCreator(client)

    @operation
    def get(self, *, grader_key: str, use_case: str | None = None) -> Returns[Grader]:
        """A grader by id or key (NotFoundError when it does not exist)."""
        query = (
            "query GetGrader($id: IdOrKey!, $useCase: IdOrKey!) { grader(id: $id, useCase: $useCase) {"
            f" {GRADER_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"id": grader_key, "useCase": self.use_case_key(use_case)})
        return _grader(data["grader"])

    @operation
    def list(self, *, use_case: str | None = None) -> Returns[list[Grader]]:
        """The use case's graders."""
        query = f"query ListGraders($useCase: IdOrKey!) {{ graders(useCase: $useCase) {{ {GRADER_FIELDS} }} }}"
        data = yield GraphQL(query, {"useCase": self.use_case_key(use_case)})
        return [_grader(g) for g in data["graders"]]

    @operation
    def lock(self, *, grader_key: str, locked: bool, use_case: str | None = None) -> Returns[Grader]:
        """Lock (no change nor deletion) or unlock a grader."""
        query = (
            f"mutation LockGrader($useCase: IdOrKey!, $id: IdOrKey!, $locked: Boolean!) "
            f"{{ lockGrader(useCase: $useCase, id: $id, locked: $locked) {{ {GRADER_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"useCase": self.use_case_key(use_case), "id": grader_key, "locked": locked})
        return _grader(data["lockGrader"])

    @operation
    def delete(self, *, grader_key: str, use_case: str | None = None) -> Returns[bool]:
        """Delete a grader; True on success. Locked graders and graders used by running jobs are refused."""
        query = (
            "mutation DeleteGrader($useCase: IdOrKey!, $id: IdOrKey!) "
            "{ deleteGrader(useCase: $useCase, id: $id) { success details } }"
        )
        data = yield GraphQL(query, {"useCase": self.use_case_key(use_case), "id": grader_key})
        return bool(data["deleteGrader"]["success"])

    @operation
    def prebuilt_configs(self) -> Returns[builtins.list[PrebuiltCriteria]]:
        """The prebuilt judges' criteria: key, name, the feedback key they log under, description."""
        data = yield GraphQL("query PrebuiltConfigs { prebuiltConfigs { key name feedbackKey description } }")
        return [PrebuiltCriteria.model_validate(c) for c in data["prebuiltConfigs"]]

    @operation
    def prebuilt_criteria(self) -> Returns[builtins.list[PrebuiltCriteriaInfo]]:
        """The prebuilt criteria with their metric (None until a grader registered it)."""
        query = (
            "query PrebuiltCriteria { prebuiltCriteria { key name description "
            "feedback { id key name kind description scoringType createdAt } } }"
        )
        data = yield GraphQL(query)
        return [PrebuiltCriteriaInfo.model_validate(c) for c in data["prebuiltCriteria"]]

    @operation
    def validate_data_schema(
        self, *, grader_key: str, dataset: str, use_case: str | None = None
    ) -> Returns[DatasetValidation]:
        """Whether every row of ``dataset`` gives the grader what it reads (context for FAITHFULNESS and
        CONTEXT_RELEVANCY, metadata fitting a reward server's schema); the message names the first bad row."""
        query = (
            "query ValidateForGrader($g: IdOrKey!, $d: IdOrKey!, $u: IdOrKey!) "
            "{ validateDataSchemaForGrader(grader: $g, dataset: $d, usecase: $u) }"
        )
        data = yield GraphQL(query, {"g": grader_key, "d": dataset, "u": self.use_case_key(use_case)})
        return DatasetValidation.model_validate(data["validateDataSchemaForGrader"])

    @operation
    def validate_dataset_schema(
        self, *, remote_env: str, dataset: str, use_case: str | None = None
    ) -> Returns[DatasetValidation]:
        """Whether every row's metadata fits the metadata schema of the reward server ``remote_env``."""
        query = (
            "mutation ValidateDatasetSchema($r: IdOrKey!, $d: IdOrKey!, $u: IdOrKey!) "
            "{ validateDatasetSchema(remoteEnv: $r, dataset: $d, usecase: $u) { valid message } }"
        )
        data = yield GraphQL(query, {"r": remote_env, "d": dataset, "u": self.use_case_key(use_case)})
        return DatasetValidation.model_validate(data["validateDatasetSchema"])

    @operation
    def test_external_endpoint(self, url: str) -> Returns[EndpointOnline | EndpointOffline]:
        """Whether the reward server at ``url`` is reachable and answers the protocol: EndpointOnline with its
        name, version and description, or EndpointOffline with the reason."""
        query = (
            "mutation TestRemoteEnv($input: RemoteEnvCreate!) { testRemoteEnv(input: $input) { __typename "
            "... on RemoteEnvTestOffline { error } ... on RemoteEnvTestOnline { name version description } } }"
        )
        data = yield GraphQL(query, {"input": {"url": url}})
        result = data["testRemoteEnv"]
        if result["__typename"] == "RemoteEnvTestOnline":
            return EndpointOnline.model_validate(result)
        return EndpointOffline.model_validate(result)

    @operation
    def set_online_grading(self, *, grader_key: str, rate: float, use_case: str | None = None) -> Returns[Grader]:
        """Score a share ``rate`` (0..1) of the use case's new live completions with this grader automatically,
        writing feedback under its key; 0 turns it off."""
        query = (
            f"mutation UpdateGrader($useCase: IdOrKey!, $id: IdOrKey!, $input: GraderUpdateInput!) "
            f"{{ updateGrader(useCase: $useCase, id: $id, input: $input) {{ {GRADER_FIELDS} }} }}"
        )
        data = yield GraphQL(
            query, {"useCase": self.use_case_key(use_case), "id": grader_key, "input": {"onlineSampleRate": rate}}
        )
        return _grader(data["updateGrader"])

    @operation
    def grade(
        self,
        *,
        grader_key: str,
        messages: builtins.list[dict[str, str]],
        completion: str,
        metadata: dict[str, Any] | None = None,
        completion_id: str | None = None,
        use_case: str | None = None,
    ) -> Returns[GradeResult]:
        """Score one completion. With ``completion_id`` (a logged completion) the score is also written as
        feedback under the grader's key."""
        sample = {"messages": messages, "completion": completion, "metadata": metadata, "completion_id": completion_id}
        results = yield from self._grade(grader_key, [sample], use_case)
        return results[0]

    @operation
    def grade_batch(
        self, *, grader_key: str, samples: builtins.list[dict[str, Any]], use_case: str | None = None
    ) -> Returns[builtins.list[GradeResult]]:
        """Score many samples ``{"messages", "completion", "metadata"?, "completion_id"?}``; one GradeResult
        each, in order. A failure on one sample is that sample's ``error``."""
        return (yield from self._grade(grader_key, samples, use_case))

    def _grade(
        self, grader_key: str, samples: builtins.list[dict[str, Any]], use_case: str | None
    ) -> Returns[builtins.list[GradeResult]]:
        body = {"use_case": self.use_case_key(use_case), "grader": grader_key, "samples": samples}
        data = yield Rest("POST", "/graders/grade", json=body)
        return [GradeResult.model_validate(r) for r in data["results"]]
