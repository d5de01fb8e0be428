"""GraphQL of graders (judge, prebuilt, remote and custom) and of the checks of a dataset against them."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated, Any

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import authenticated, requires
from adaptive_engine.server.domains.feedback.graphql import MetricCreate
from adaptive_engine.server.domains.feedback.types import MetricType, to_gql_metric
from adaptive_engine.server.domains.feedback_keys.service import list_keys
from adaptive_engine.server.domains.graders import compatibility, judges, service
from adaptive_engine.server.domains.graders.graphql.judges import (
    JudgeExample,
    JudgeExampleInput,
    PrebuiltCriteriaKey,
    example_dicts,
    judge_model,
    to_gql_examples,
)
from adaptive_engine.server.domains.graders.records import GraderRecord
from adaptive_engine.server.domains.graders.schemas import (
    CustomConfigIn,
    GraderConfigIn,
    JudgeConfigIn,
    MetricCreateIn,
    MetricRef,
    PrebuiltConfigIn,
    RemoteConfigIn,
)
from adaptive_engine.server.domains.models.types import ModelType
from adaptive_engine.server.domains.use_cases.graphql import UseCaseType, to_gql_use_case
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.scalars import JSON, IdOrKey
from adaptive_engine.server.timestamps import epoch


@strawberry.enum(name="GraderTypeEnum")
class GraderTypeEnum(enum.Enum):
    JUDGE = "JUDGE"
    PREBUILT = "PREBUILT"
    REMOTE = "REMOTE"
    CUSTOM = "CUSTOM"


# --------------------------------------------------------------------------- output types


@strawberry.type(name="JudgeConfigOutput")
class JudgeConfigOutput:
    criteria: str
    examples: list[JudgeExample]
    system_template: str
    user_template: str
    model_id: strawberry.Private[str]

    @strawberry.field
    async def model(self, info: Info[Context, None]) -> ModelType:
        return await judge_model(info, self.model_id)


@strawberry.type(name="PrebuiltConfigDefinition")
class PrebuiltConfigDefinitionType:
    key: PrebuiltCriteriaKey
    name: str
    feedback_key: str
    description: str

    @classmethod
    def of(cls, c: judges.PrebuiltCriteria) -> PrebuiltConfigDefinitionType:
        return cls(key=c.key, name=c.name, feedback_key=c.feedback_key, description=c.description)


@strawberry.type(name="PrebuiltCriteria")
class PrebuiltCriteriaType:
    key: PrebuiltCriteriaKey
    name: str
    description: str
    feedback: MetricType | None = strawberry.field(
        description="The metric its scores are logged under, once registered (by the first grader that uses it)"
    )


@strawberry.type(name="DatasetValidationOutput")
class DatasetValidationOutput:
    valid: bool
    message: str


@strawberry.type(name="PrebuiltConfigOutput")
class PrebuiltConfigOutput:
    criteria: PrebuiltConfigDefinitionType
    model_id: strawberry.Private[str]

    @strawberry.field
    async def model(self, info: Info[Context, None]) -> ModelType:
        return await judge_model(info, self.model_id)


@strawberry.type(name="RemoteConfigOutput")
class RemoteConfigOutput:
    url: str
    version: str
    description: str
    name: str


@strawberry.type(name="CustomConfigOutput")
class CustomConfigOutput:
    description: str | None
    has_code: bool


GraderConfig = Annotated[
    JudgeConfigOutput | PrebuiltConfigOutput | RemoteConfigOutput | CustomConfigOutput,
    strawberry.union("GraderConfig"),
]


def to_gql_grader_config(grader_type: str, config: dict[str, Any]) -> GraderConfig:
    """The stored settings of a grader of this type (graders/service.py build_config) on the wire."""
    if grader_type == "JUDGE":
        return JudgeConfigOutput(
            criteria=config["criteria"],
            examples=to_gql_examples(config.get("examples") or []),
            system_template=config.get("system_template") or judges.DEFAULT_SYSTEM_TEMPLATE,
            user_template=config.get("user_template") or judges.DEFAULT_USER_TEMPLATE,
            model_id=config["model_id"],
        )
    if grader_type == "PREBUILT":
        return PrebuiltConfigOutput(
            criteria=PrebuiltConfigDefinitionType.of(judges.PREBUILT[judges.PrebuiltKey(config["criteria"])]),
            model_id=config["model_id"],
        )
    if grader_type == "REMOTE":
        return RemoteConfigOutput(
            url=config["url"],
            version=config.get("version") or "",
            description=config.get("description") or "",
            name=config.get("name") or "",
        )
    return CustomConfigOutput(description=config.get("description"), has_code=bool(config.get("code")))


@strawberry.type(name="Grader")
class GraderType:
    id: uuid.UUID
    name: str
    key: str
    locked: bool
    grader_type: GraderTypeEnum
    grader_config: GraderConfig
    use_case: UseCaseType
    metric: MetricType
    online_sample_rate: float = strawberry.field(
        description="Share of new live completions this grader scores automatically (0 = off)"
    )
    created_at: int
    updated_at: int


def to_gql_grader(grader: GraderRecord) -> GraderType:
    return GraderType(
        id=grader.id,
        name=grader.name,
        key=grader.key,
        locked=grader.locked,
        grader_type=GraderTypeEnum(grader.grader_type),
        grader_config=to_gql_grader_config(grader.grader_type, grader.config),
        use_case=to_gql_use_case(grader.use_case),
        metric=to_gql_metric(grader.metric),
        online_sample_rate=grader.online_rate,
        created_at=epoch(grader.created_at) or 0,
        updated_at=epoch(grader.updated_at) or epoch(grader.created_at) or 0,
    )


@strawberry.type(name="GraderDeleteResult")
class GraderDeleteResult:
    success: bool
    details: str | None = None


# --------------------------------------------------------------------------- inputs


@strawberry.input(name="JudgeConfigInput")
class JudgeConfigInput:
    model: str
    criteria: str
    examples: list[JudgeExampleInput] = strawberry.field(default_factory=list)
    system_template: str | None = None
    user_template: str | None = None


@strawberry.input(name="PrebuiltConfigInput")
class PrebuiltConfigInput:
    key: PrebuiltCriteriaKey
    model: str


@strawberry.input(name="RemoteConfigInput")
class RemoteConfigInput:
    url: str


@strawberry.input(name="CustomConfigInput")
class CustomConfigInput:
    description: str | None = None
    code: str | None = strawberry.field(
        default=None, description="Python source defining grade(messages, completion, metadata)"
    )


@strawberry.input(name="GraderConfigInput")
class GraderConfigInput:
    judge: JudgeConfigInput | None = None
    prebuilt: PrebuiltConfigInput | None = None
    remote: RemoteConfigInput | None = None
    custom: CustomConfigInput | None = None


@strawberry.input(name="MetricGetOrCreate")
class MetricGetOrCreate:
    existing: str | None = None
    new: MetricCreate | None = None


@strawberry.input(name="GraderCreateInput")
class GraderCreateInput:
    name: str
    grader_type: GraderTypeEnum
    grader_config: GraderConfigInput
    key: str | None = None
    metric: MetricGetOrCreate | None = None


@strawberry.input(name="GraderUpdateInput")
class GraderUpdateInput:
    name: str | None = None
    grader_type: GraderTypeEnum | None = None
    grader_config: GraderConfigInput | None = None
    online_sample_rate: float | None = strawberry.field(
        default=None, description="Share (0..1) of new live completions to grade automatically; 0 turns it off"
    )


def to_config(value: GraderConfigInput) -> GraderConfigIn:
    judge = prebuilt = remote_cfg = custom_cfg = None
    if value.judge is not None:
        j = value.judge
        judge = JudgeConfigIn(
            model=j.model,
            criteria=j.criteria,
            system_template=j.system_template,
            user_template=j.user_template,
            examples=example_dicts(j.examples),
        )
    if value.prebuilt is not None:
        prebuilt = PrebuiltConfigIn(key=judges.PrebuiltKey(value.prebuilt.key).value, model=value.prebuilt.model)
    if value.remote is not None:
        remote_cfg = RemoteConfigIn(url=value.remote.url)
    if value.custom is not None:
        custom_cfg = CustomConfigIn(description=value.custom.description, code=value.custom.code)
    return GraderConfigIn(judge=judge, prebuilt=prebuilt, remote=remote_cfg, custom=custom_cfg)


def to_metric(value: MetricGetOrCreate | None) -> MetricRef | None:
    if value is None:
        return None
    new = None
    if value.new is not None:
        n = value.new
        new = MetricCreateIn(
            name=n.name,
            kind=n.kind.value,
            key=n.key,
            scoring_type=n.scoring_type.value,
            description=n.description,
            unit=n.unit,
        )
    return MetricRef(existing=value.existing, new=new)


# --------------------------------------------------------------------------- resolvers


@strawberry.type
class GradersQuery:
    @strawberry.field(extensions=[authenticated()], description="The prebuilt judges' criteria")
    async def prebuilt_configs(self) -> list[PrebuiltConfigDefinitionType]:
        return [PrebuiltConfigDefinitionType.of(c) for c in judges.PREBUILT.values()]

    @strawberry.field(
        extensions=[authenticated()], description="The prebuilt criteria, with their metric once registered"
    )
    async def prebuilt_criteria(self, info: Info[Context, None]) -> list[PrebuiltCriteriaType]:
        metrics = {m.key: m for m in await list_keys(info.context.session)}
        return [
            PrebuiltCriteriaType(
                key=c.key,
                name=c.name,
                description=c.description,
                feedback=to_gql_metric(metrics[c.feedback_key]) if c.feedback_key in metrics else None,
            )
            for c in judges.PREBUILT.values()
        ]

    @strawberry.field(
        extensions=[requires("use_case:read", use_case="usecase")],
        description="Whether every row of the dataset gives the grader what it reads: {valid, message}",
    )
    async def validate_data_schema_for_grader(
        self, info: Info[Context, None], grader: IdOrKey, dataset: IdOrKey, usecase: IdOrKey
    ) -> JSON:
        ctx = info.context
        result = await compatibility.for_grader(
            ctx.session, ctx.principal, ctx.platform.file_store, grader=grader, dataset=dataset, use_case=usecase
        )
        return JSON({"valid": result.valid, "message": result.message})

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def grader(self, info: Info[Context, None], id: IdOrKey, use_case: IdOrKey) -> GraderType:
        ctx = info.context
        return to_gql_grader(await service.read_grader(ctx.session, ctx.principal, use_case, id))

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def graders(self, info: Info[Context, None], use_case: IdOrKey) -> list[GraderType]:
        ctx = info.context
        return [to_gql_grader(g) for g in await service.list_graders(ctx.session, ctx.principal, use_case)]


@strawberry.type
class GradersMutation:
    @strawberry.mutation(
        extensions=[requires("use_case:read", use_case="usecase")],
        description="Whether every row's metadata fits the reward server's metadata schema",
    )
    async def validate_dataset_schema(
        self, info: Info[Context, None], remote_env: IdOrKey, dataset: IdOrKey, usecase: IdOrKey
    ) -> DatasetValidationOutput:
        ctx = info.context
        result = await compatibility.for_remote_env(
            ctx.session,
            ctx.principal,
            ctx.platform.file_store,
            remote_env=remote_env,
            dataset=dataset,
            use_case=usecase,
        )
        return DatasetValidationOutput(valid=result.valid, message=result.message)

    @strawberry.mutation(extensions=[requires("grader:write", use_case="use_case")])
    async def create_grader(self, info: Info[Context, None], use_case: IdOrKey, input: GraderCreateInput) -> GraderType:
        ctx = info.context
        grader = await service.create_grader(
            ctx.session,
            ctx.principal,
            use_case,
            name=input.name,
            key=input.key,
            grader_type=input.grader_type.value,
            config=to_config(input.grader_config),
            metric=to_metric(input.metric),
            guard=ctx.platform.outbound,
        )
        return to_gql_grader(grader)

    @strawberry.mutation(extensions=[requires("grader:write", use_case="use_case")])
    async def update_grader(
        self, info: Info[Context, None], use_case: IdOrKey, id: IdOrKey, input: GraderUpdateInput
    ) -> GraderType:
        ctx = info.context
        grader = await service.update_grader(
            ctx.session,
            ctx.principal,
            use_case,
            id,
            name=input.name,
            grader_type=input.grader_type.value if input.grader_type else None,
            config=to_config(input.grader_config) if input.grader_config else None,
            online_rate=input.online_sample_rate,
            guard=ctx.platform.outbound,
        )
        return to_gql_grader(grader)

    @strawberry.mutation(extensions=[requires("grader:write", use_case="use_case")])
    async def lock_grader(self, info: Info[Context, None], use_case: IdOrKey, id: IdOrKey, locked: bool) -> GraderType:
        ctx = info.context
        return to_gql_grader(await service.lock_grader(ctx.session, ctx.principal, use_case, id, locked))

    @strawberry.mutation(extensions=[requires("grader:write", use_case="use_case")])
    async def delete_grader(self, info: Info[Context, None], use_case: IdOrKey, id: IdOrKey) -> GraderDeleteResult:
        ctx = info.context
        deleted = await service.delete_grader(ctx.session, ctx.principal, use_case, id)
        return GraderDeleteResult(success=True, details=f"grader {deleted} deleted")
