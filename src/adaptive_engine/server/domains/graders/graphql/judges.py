"""GraphQL of judges: versioned LLM judges of a use case (criteria, examples, a model)."""

from __future__ import annotations

import enum
import uuid
from typing import Any

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import requires
from adaptive_engine.server.domains.feedback.types import MetricType, to_gql_metric
from adaptive_engine.server.domains.graders import judges, judges_registry
from adaptive_engine.server.domains.graders.records import JudgeRecord
from adaptive_engine.server.domains.models.service import models_by_id
from adaptive_engine.server.domains.models.types import ModelType, to_gql_model
from adaptive_engine.server.errors import NotFound
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.loaders import lookup
from adaptive_engine.server.graphql.scalars import JSON, IdOrKey
from adaptive_engine.server.timestamps import epoch

# strawberry marks the domain's enum itself with its GraphQL name; the alias is what annotations name.
strawberry.enum(judges.PrebuiltKey, name="PrebuiltCriteriaKey")
PrebuiltCriteriaKey = judges.PrebuiltKey

MODELS_BY_ID = lookup(models_by_id)


async def judge_model(info: Info[Context, None], model_id: str) -> ModelType:
    """The model a judge's configuration names (batched with the other items of the list)."""
    model = await info.context.loaders.load(MODELS_BY_ID, uuid.UUID(model_id))
    if model is None:
        raise NotFound(f"the judge model {model_id} is no longer in the registry")
    return to_gql_model(model)


@strawberry.type(name="JudgeExampleTurn")
class JudgeExampleTurn:
    role: str
    content: str


@strawberry.type(name="JudgeExample")
class JudgeExample:
    input: list[JudgeExampleTurn]
    output: str
    pass_: bool = strawberry.field(name="pass")
    reasoning: str | None


def to_gql_examples(stored: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> list[JudgeExample]:
    return [
        JudgeExample(
            input=[JudgeExampleTurn(role=t["role"], content=t["content"]) for t in ex["input"]],
            output=ex["output"],
            pass_=ex["pass"],
            reasoning=ex.get("reasoning"),
        )
        for ex in stored
    ]


@strawberry.enum(name="JudgeCapability")
class JudgeCapability(enum.Enum):
    TRAINING = "TRAINING"
    EVALUATION = "EVALUATION"


@strawberry.type(name="Judge")
class JudgeType:
    id: str
    key: str
    version: int
    name: str
    criteria: str | None
    prebuilt: str | None
    examples: list[JudgeExample] | None
    capabilities: list[JudgeCapability]
    model: ModelType
    use_case_id: uuid.UUID
    metric: MetricType
    created_at: int
    updated_at: int


def to_gql_judge(judge: JudgeRecord) -> JudgeType:
    return JudgeType(
        id=str(judge.id),
        key=judge.key,
        version=judge.version,
        name=judge.name,
        criteria=judge.criteria,
        prebuilt=judge.prebuilt,
        examples=to_gql_examples(judge.examples),
        capabilities=[JudgeCapability.EVALUATION, JudgeCapability.TRAINING],
        model=to_gql_model(judge.model),
        use_case_id=judge.use_case_id,
        metric=to_gql_metric(judge.metric),
        created_at=epoch(judge.created_at) or 0,
        updated_at=epoch(judge.updated_at) or epoch(judge.created_at) or 0,
    )


@strawberry.type(name="JudgeDeleteResult")
class JudgeDeleteResult:
    success: bool
    details: str | None = None


@strawberry.input(name="JudgeExampleInputTurnEntry")
class JudgeExampleInputTurnEntry:
    role: str
    content: str


@strawberry.input(name="JudgeExampleInput")
class JudgeExampleInput:
    input: list[JudgeExampleInputTurnEntry]
    output: str
    pass_: bool = strawberry.field(name="pass")
    reasoning: str | None = None
    id: JSON | None = None


@strawberry.input(name="JudgeCreate")
class JudgeCreate:
    name: str
    criteria: str
    model: str
    key: str | None = None
    examples: list[JudgeExampleInput] = strawberry.field(default_factory=list)
    metric: str | None = None


@strawberry.input(name="JudgeUpdate")
class JudgeUpdate:
    name: str | None = None
    criteria: str | None = None
    examples: list[JudgeExampleInput] | None = None
    model: str | None = None


@strawberry.input(name="PrebuiltJudgeCreate")
class PrebuiltJudgeCreate:
    name: str
    model: str
    prebuilt_criteria_key: PrebuiltCriteriaKey
    key: str | None = None


def example_dicts(examples: list[JudgeExampleInput]) -> list[dict[str, Any]]:
    """Examples as the judges store them."""
    return [
        {
            "input": [{"role": t.role, "content": t.content} for t in ex.input],
            "output": ex.output,
            "pass": ex.pass_,
            "reasoning": ex.reasoning,
        }
        for ex in examples
    ]


@strawberry.type
class JudgeQuery:
    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def judge(
        self, info: Info[Context, None], id: IdOrKey, use_case: IdOrKey, version: int | None = None
    ) -> JudgeType:
        ctx = info.context
        return to_gql_judge(await judges_registry.get_judge(ctx.session, ctx.principal, use_case, id, version))

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def judges(self, info: Info[Context, None], use_case: IdOrKey) -> list[JudgeType]:
        ctx = info.context
        return [to_gql_judge(j) for j in await judges_registry.list_judges(ctx.session, ctx.principal, use_case)]

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def judge_versions(self, info: Info[Context, None], use_case: IdOrKey, key: str) -> list[JudgeType]:
        ctx = info.context
        versions = await judges_registry.judge_versions(ctx.session, ctx.principal, use_case, key)
        return [to_gql_judge(j) for j in versions]


@strawberry.type
class JudgeMutation:
    @strawberry.mutation(extensions=[requires("grader:write", use_case="use_case")])
    async def create_judge(self, info: Info[Context, None], use_case: IdOrKey, input: JudgeCreate) -> JudgeType:
        ctx = info.context
        judge = await judges_registry.create_judge(
            ctx.session,
            ctx.principal,
            use_case,
            key=input.key,
            name=input.name,
            criteria=input.criteria,
            examples=example_dicts(input.examples),
            model=input.model,
            metric=input.metric,
        )
        return to_gql_judge(judge)

    @strawberry.mutation(extensions=[requires("grader:write", use_case="use_case")])
    async def create_prebuilt_judge(
        self, info: Info[Context, None], use_case: IdOrKey, input: PrebuiltJudgeCreate
    ) -> JudgeType:
        ctx = info.context
        judge = await judges_registry.create_prebuilt_judge(
            ctx.session,
            ctx.principal,
            use_case,
            key=input.key,
            name=input.name,
            model=input.model,
            prebuilt=judges.PrebuiltKey(input.prebuilt_criteria_key).value,
        )
        return to_gql_judge(judge)

    @strawberry.mutation(extensions=[requires("grader:write", use_case="use_case")])
    async def update_judge(
        self, info: Info[Context, None], use_case: IdOrKey, key: str, input: JudgeUpdate
    ) -> JudgeType:
        ctx = info.context
        judge = await judges_registry.update_judge(
            ctx.session,
            ctx.principal,
            use_case,
            key,
            name=input.name,
            criteria=input.criteria,
            examples=example_dicts(input.examples) if input.examples is not None else None,
            model=input.model,
        )
        return to_gql_judge(judge)

    @strawberry.mutation(extensions=[requires("grader:write", use_case="use_case")])
    async def delete_judge(self, info: Info[Context, None], use_case: IdOrKey, key: str) -> JudgeDeleteResult:
        ctx = info.context
        count = await judges_registry.delete_judge(ctx.session, ctx.principal, use_case, key)
        return JudgeDeleteResult(success=True, details=f"judge '{key}' deleted ({count} version(s))")
