"""GraphQL of graders and remote environments (names as the official client's documents use them)."""

from __future__ import annotations

import enum
import uuid
from typing import Annotated

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import authenticated, requires
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.domains.feedback.graphql import MetricCreate
from adaptive_engine.server.domains.feedback.types import MetricType, to_gql_metric
from adaptive_engine.server.domains.feedback_keys.records import MetricRecord
from adaptive_engine.server.domains.feedback_keys.service import list_keys
from adaptive_engine.server.domains.graders import (
    compatibility,
    judges,
    judges_registry,
    remote_envs,
    service,
)
from adaptive_engine.server.domains.graders.schemas import (
    CustomConfigIn,
    GraderConfigIn,
    JudgeConfigIn,
    MetricCreateIn,
    MetricRef,
    PrebuiltConfigIn,
    RemoteConfigIn,
)
from adaptive_engine.server.domains.models.records import ModelRecord
from adaptive_engine.server.domains.models.types import ModelType, to_gql_model
from adaptive_engine.server.domains.use_cases.graphql import UseCaseType, to_gql_use_case
from adaptive_engine.server.domains.use_cases.service import UseCaseRecord
from adaptive_engine.server.errors import NotFound
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.loaders import row
from adaptive_engine.server.graphql.scalars import JSON, IdOrKey
from adaptive_engine.server.timestamps import epoch


@strawberry.enum(name="GraderTypeEnum")
class GraderTypeEnum(enum.Enum):
    JUDGE = "JUDGE"
    PREBUILT = "PREBUILT"
    REMOTE = "REMOTE"
    CUSTOM = "CUSTOM"


PrebuiltCriteriaKey = strawberry.enum(judges.PrebuiltKey, name="PrebuiltCriteriaKey")


@strawberry.enum(name="RemoteEnvStatus")
class RemoteEnvStatus(enum.Enum):
    ONLINE = "ONLINE"
    OFFLINE = "OFFLINE"


# --------------------------------------------------------------------------- output types


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


def _examples(raw: list[dict]) -> list[JudgeExample]:
    return [
        JudgeExample(
            input=[JudgeExampleTurn(role=t["role"], content=t["content"]) for t in ex["input"]],
            output=ex["output"],
            pass_=ex["pass"],
            reasoning=ex.get("reasoning"),
        )
        for ex in raw
    ]


async def _model(info: Info[Context, None], model_id: str) -> ModelType:
    model = await info.context.loaders.load(row(orm.Model.id), uuid.UUID(model_id))
    if model is None:
        raise NotFound(f"the judge model {model_id} is no longer in the registry")
    return to_gql_model(ModelRecord.of(model))


@strawberry.type(name="JudgeConfigOutput")
class JudgeConfigOutput:
    config: strawberry.Private[dict]

    @strawberry.field
    def criteria(self) -> str:
        return self.config["criteria"]

    @strawberry.field
    def examples(self) -> list[JudgeExample]:
        return _examples(self.config.get("examples") or [])

    @strawberry.field
    def system_template(self) -> str:
        return self.config.get("system_template") or judges.DEFAULT_SYSTEM_TEMPLATE

    @strawberry.field
    def user_template(self) -> str:
        return self.config.get("user_template") or judges.DEFAULT_USER_TEMPLATE

    @strawberry.field
    async def model(self, info: Info[Context, None]) -> ModelType:
        return await _model(info, self.config["model_id"])


@strawberry.type(name="PrebuiltConfigDefinition")
class PrebuiltConfigDefinitionType:
    key: PrebuiltCriteriaKey  # type: ignore[valid-type]
    name: str
    feedback_key: str
    description: str

    @classmethod
    def of(cls, c: judges.PrebuiltCriteria) -> PrebuiltConfigDefinitionType:
        return cls(key=c.key, name=c.name, feedback_key=c.feedback_key, description=c.description)


@strawberry.type(name="PrebuiltCriteria")
class PrebuiltCriteriaType:
    key: PrebuiltCriteriaKey  # type: ignore[valid-type]
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
    config: strawberry.Private[dict]

    @strawberry.field
    def criteria(self) -> PrebuiltConfigDefinitionType:
        return PrebuiltConfigDefinitionType.of(judges.PREBUILT[judges.PrebuiltKey(self.config["criteria"])])

    @strawberry.field
    async def model(self, info: Info[Context, None]) -> ModelType:
        return await _model(info, self.config["model_id"])


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


@strawberry.type(name="Grader")
class GraderType:
    row: strawberry.Private[orm.Grader]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def key(self) -> str:
        return self.row.key

    @strawberry.field
    def locked(self) -> bool:
        return self.row.locked

    @strawberry.field
    def grader_type(self) -> GraderTypeEnum:
        return GraderTypeEnum(self.row.grader_type)

    @strawberry.field
    def grader_config(self) -> GraderConfig:
        cfg = self.row.config or {}
        kind = self.row.grader_type
        if kind == "JUDGE":
            return JudgeConfigOutput(config=cfg)
        if kind == "PREBUILT":
            return PrebuiltConfigOutput(config=cfg)
        if kind == "REMOTE":
            return RemoteConfigOutput(
                url=cfg["url"],
                version=cfg.get("version") or "",
                description=cfg.get("description") or "",
                name=cfg.get("name") or "",
            )
        return CustomConfigOutput(description=cfg.get("description"), has_code=bool(cfg.get("code")))

    @strawberry.field
    def use_case(self) -> UseCaseType:
        return to_gql_use_case(UseCaseRecord.of(self.row.use_case))

    @strawberry.field
    def metric(self) -> MetricType:
        return to_gql_metric(MetricRecord.of(self.row.metric))

    @strawberry.field(description="Share of new live completions this grader scores automatically (0 = off)")
    def online_sample_rate(self) -> float:
        return self.row.online_rate

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0

    @strawberry.field
    def updated_at(self) -> int:
        return epoch(self.row.updated_at) or epoch(self.row.created_at) or 0


@strawberry.type(name="GraderDeleteResult")
class GraderDeleteResult:
    success: bool
    details: str | None = None


@strawberry.type(name="RemoteEnv")
class RemoteEnvType:
    row: strawberry.Private[orm.RemoteEnv]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def key(self) -> str:
        return self.row.key

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def url(self) -> str:
        return self.row.url

    @strawberry.field
    def description(self) -> str:
        return self.row.description

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0

    @strawberry.field
    def version(self) -> str:
        return self.row.version

    @strawberry.field
    def status(self) -> RemoteEnvStatus:
        return RemoteEnvStatus(self.row.status)

    @strawberry.field
    def metadata_schema(self) -> JSON | None:
        return self.row.metadata_schema


@strawberry.type(name="RemoteEnvTestOnline")
class RemoteEnvTestOnline:
    name: str
    version: str
    description: str


@strawberry.type(name="RemoteEnvTestOffline")
class RemoteEnvTestOffline:
    error: str


RemoteEnvTest = Annotated[RemoteEnvTestOnline | RemoteEnvTestOffline, strawberry.union("RemoteEnvTest")]


@strawberry.enum(name="JudgeCapability")
class JudgeCapability(enum.Enum):
    TRAINING = "TRAINING"
    EVALUATION = "EVALUATION"


@strawberry.type(name="Judge")
class JudgeType:
    row: strawberry.Private[orm.Judge]

    @strawberry.field
    def id(self) -> str:
        return str(self.row.id)

    @strawberry.field
    def key(self) -> str:
        return self.row.key

    @strawberry.field
    def version(self) -> int:
        return self.row.version

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def criteria(self) -> str | None:
        return self.row.criteria

    @strawberry.field
    def prebuilt(self) -> str | None:
        return self.row.prebuilt

    @strawberry.field
    def examples(self) -> list[JudgeExample] | None:
        return _examples(self.row.examples or [])

    @strawberry.field
    def capabilities(self) -> list[JudgeCapability]:
        return [JudgeCapability.EVALUATION, JudgeCapability.TRAINING]

    @strawberry.field
    def model(self) -> ModelType:
        return to_gql_model(ModelRecord.of(self.row.model))

    @strawberry.field
    def use_case_id(self) -> uuid.UUID:
        return self.row.use_case_id

    @strawberry.field
    def metric(self) -> MetricType:
        return to_gql_metric(MetricRecord.of(self.row.metric))

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0

    @strawberry.field
    def updated_at(self) -> int:
        return epoch(self.row.updated_at) or epoch(self.row.created_at) or 0


@strawberry.type(name="JudgeDeleteResult")
class JudgeDeleteResult:
    success: bool
    details: str | None = None


# --------------------------------------------------------------------------- inputs


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


@strawberry.input(name="JudgeConfigInput")
class JudgeConfigInput:
    model: str
    criteria: str
    examples: list[JudgeExampleInput] = strawberry.field(default_factory=list)
    system_template: str | None = None
    user_template: str | None = None


@strawberry.input(name="PrebuiltConfigInput")
class PrebuiltConfigInput:
    key: PrebuiltCriteriaKey  # type: ignore[valid-type]
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


@strawberry.input(name="RemoteEnvCreate")
class RemoteEnvCreate:
    url: str
    key: str | None = None
    name: str | None = None
    description: str | None = None


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
    prebuilt_criteria_key: PrebuiltCriteriaKey  # type: ignore[valid-type]
    key: str | None = None


def _example_dicts(examples: list[JudgeExampleInput]) -> list[dict]:
    return [
        {
            "input": [{"role": t.role, "content": t.content} for t in ex.input],
            "output": ex.output,
            "pass": ex.pass_,
            "reasoning": ex.reasoning,
        }
        for ex in examples
    ]


def to_config(value: GraderConfigInput) -> GraderConfigIn:
    judge = prebuilt = remote_cfg = custom_cfg = None
    if value.judge is not None:
        j = value.judge
        judge = JudgeConfigIn(
            model=j.model,
            criteria=j.criteria,
            system_template=j.system_template,
            user_template=j.user_template,
            examples=[
                {
                    "input": [{"role": t.role, "content": t.content} for t in ex.input],
                    "output": ex.output,
                    "pass": ex.pass_,
                    "reasoning": ex.reasoning,
                }
                for ex in j.examples
            ],
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
class GraderQuery:
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
        return {"valid": result.valid, "message": result.message}

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def grader(self, info: Info[Context, None], id: IdOrKey, use_case: IdOrKey) -> GraderType:
        ctx = info.context
        return GraderType(row=await service.get_grader(ctx.session, ctx.principal, use_case, id))

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def graders(self, info: Info[Context, None], use_case: IdOrKey) -> list[GraderType]:
        ctx = info.context
        return [GraderType(row=g) for g in await service.list_graders(ctx.session, ctx.principal, use_case)]

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def judge(
        self, info: Info[Context, None], id: IdOrKey, use_case: IdOrKey, version: int | None = None
    ) -> JudgeType:
        ctx = info.context
        return JudgeType(row=await judges_registry.get_judge(ctx.session, ctx.principal, use_case, id, version))

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def judges(self, info: Info[Context, None], use_case: IdOrKey) -> list[JudgeType]:
        ctx = info.context
        return [JudgeType(row=j) for j in await judges_registry.list_judges(ctx.session, ctx.principal, use_case)]

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def judge_versions(self, info: Info[Context, None], use_case: IdOrKey, key: str) -> list[JudgeType]:
        ctx = info.context
        rows = await judges_registry.judge_versions(ctx.session, ctx.principal, use_case, key)
        return [JudgeType(row=j) for j in rows]

    @strawberry.field(extensions=[authenticated()])
    async def remote_envs(self, info: Info[Context, None]) -> list[RemoteEnvType]:
        ctx = info.context
        return [RemoteEnvType(row=e) for e in await remote_envs.list_remote_envs(ctx.session, ctx.principal)]


@strawberry.type
class GraderMutation:
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
        return GraderType(row=grader)

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
        return GraderType(row=grader)

    @strawberry.mutation(extensions=[requires("grader:write", use_case="use_case")])
    async def lock_grader(self, info: Info[Context, None], use_case: IdOrKey, id: IdOrKey, locked: bool) -> GraderType:
        ctx = info.context
        return GraderType(row=await service.lock_grader(ctx.session, ctx.principal, use_case, id, locked))

    @strawberry.mutation(extensions=[requires("grader:write", use_case="use_case")])
    async def delete_grader(self, info: Info[Context, None], use_case: IdOrKey, id: IdOrKey) -> GraderDeleteResult:
        ctx = info.context
        deleted = await service.delete_grader(ctx.session, ctx.principal, use_case, id)
        return GraderDeleteResult(success=True, details=f"grader {deleted} deleted")

    @strawberry.mutation(extensions=[requires("grader:write")])
    async def test_remote_env(self, info: Info[Context, None], input: RemoteEnvCreate) -> RemoteEnvTest:
        result = await remote_envs.test_endpoint(info.context.principal, info.context.platform.outbound, input.url)
        if result.online and result.info is not None:
            return RemoteEnvTestOnline(
                name=result.info.name, version=result.info.version, description=result.info.description
            )
        return RemoteEnvTestOffline(error=result.error or "offline")

    @strawberry.mutation(extensions=[requires("grader:write")])
    async def add_remote_env(self, info: Info[Context, None], input: RemoteEnvCreate) -> RemoteEnvType:
        ctx = info.context
        env = await remote_envs.add_remote_env(
            ctx.session,
            ctx.principal,
            ctx.platform.outbound,
            url=input.url,
            key=input.key,
            name=input.name,
            description=input.description,
        )
        return RemoteEnvType(row=env)

    @strawberry.mutation(extensions=[requires("grader:write")])
    async def remove_remote_env(self, info: Info[Context, None], id_or_key: IdOrKey) -> str:
        ctx = info.context
        env = await remote_envs.remove_remote_env(ctx.session, ctx.principal, id_or_key)
        return str(env.id)

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
            examples=_example_dicts(input.examples),
            model=input.model,
            metric=input.metric,
        )
        return JudgeType(row=judge)

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
        return JudgeType(row=judge)

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
            examples=_example_dicts(input.examples) if input.examples is not None else None,
            model=input.model,
        )
        return JudgeType(row=judge)

    @strawberry.mutation(extensions=[requires("grader:write", use_case="use_case")])
    async def delete_judge(self, info: Info[Context, None], use_case: IdOrKey, key: str) -> JudgeDeleteResult:
        ctx = info.context
        count = await judges_registry.delete_judge(ctx.session, ctx.principal, use_case, key)
        return JudgeDeleteResult(success=True, details=f"judge '{key}' deleted ({count} version(s))")
