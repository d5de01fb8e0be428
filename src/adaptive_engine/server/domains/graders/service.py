"""Graders: definition, lookup, locking and deletion. Grading itself is in grading.py."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.lookup import find_by_id_or_key, parse_uuid
from adaptive_engine.server.db.models import (
    Grader,
    Job,
    Metric,
    Model,
    UseCase,
    UseCaseMetric,
)
from adaptive_engine.server.domains.graders import custom, judges, remote
from adaptive_engine.server.domains.graders.records import GraderRecord
from adaptive_engine.server.domains.graders.schemas import (
    GRADER_TYPES,
    GraderConfigIn,
    MetricRef,
    validate_examples,
)
from adaptive_engine.server.domains.use_cases.service import (
    get_use_case,
    key_from_name,
    validate_key,
)
from adaptive_engine.server.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
)
from adaptive_engine.server.outbound import OutboundGuard
from adaptive_engine.server.timestamps import utcnow

READ = "use_case:read"
WRITE = "grader:write"
PROBE_TIMEOUT_S = 10.0
METRIC_KINDS = {"SCALAR", "BOOL"}
SCORING_TYPES = {"HIGHER_IS_BETTER", "LOWER_IS_BETTER"}


# --------------------------------------------------------------------------- lookup


async def _grader_in(session: AsyncSession, use_case: UseCase, id_or_key: str) -> Grader:
    as_uuid = parse_uuid(id_or_key)
    query = select(Grader).where(Grader.use_case_id == use_case.id)
    if as_uuid is not None:
        found = (await session.execute(query.where(Grader.id == as_uuid))).scalar_one_or_none()
        if found is not None:
            return found
    found = (await session.execute(query.where(Grader.key == str(id_or_key)))).scalar_one_or_none()
    if found is None:
        raise NotFound(f"grader '{id_or_key}' not found in use case '{use_case.key}'")
    return found


async def get_grader(
    session: AsyncSession, principal: Principal, use_case: str, id_or_key: str, permission: str = READ
) -> Grader:
    uc = await get_use_case(session, principal, use_case, permission)
    return await _grader_in(session, uc, id_or_key)


async def read_grader(session: AsyncSession, principal: Principal, use_case: str, id_or_key: str) -> GraderRecord:
    """The grader as readers see it."""
    return GraderRecord.of(await get_grader(session, principal, use_case, id_or_key))


async def list_graders(session: AsyncSession, principal: Principal, use_case: str) -> list[GraderRecord]:
    uc = await get_use_case(session, principal, use_case, READ)
    rows = await session.execute(
        select(Grader).where(Grader.use_case_id == uc.id).order_by(Grader.created_at, Grader.key)
    )
    return [GraderRecord.of(g) for g in rows.scalars()]


async def find_chat_model(session: AsyncSession, id_or_key: str) -> Model:
    if not id_or_key or not str(id_or_key).strip():
        raise InvalidInput("a judge needs a model")
    model = await find_by_id_or_key(session, Model, id_or_key)
    if model is None:
        raise NotFound(f"judge model '{id_or_key}' is not in the model registry")
    if model.kind != "chat":
        raise InvalidInput(f"judge model '{model.key}' is a {model.kind} model, not a chat model")
    return model


# --------------------------------------------------------------------------- feedback keys


async def resolve_metric(
    session: AsyncSession,
    use_case: UseCase,
    ref: MetricRef | None,
    *,
    default_key: str,
    default_name: str,
    default_kind: str,
    default_description: str = "",
) -> Metric:
    """Get or create the feedback key a grader writes to, and link it to the use case."""
    if ref is not None and ref.existing and ref.new:
        raise InvalidInput("metric: give either 'existing' or 'new', not both")
    if ref is not None and ref.new is not None:
        new = ref.new
        key = new.key or key_from_name(new.name)
        validate_key(key, "feedback key")
        if new.kind not in METRIC_KINDS:
            raise InvalidInput(f"metric kind must be one of {sorted(METRIC_KINDS)}")
        if new.scoring_type not in SCORING_TYPES:
            raise InvalidInput(f"metric scoringType must be one of {sorted(SCORING_TYPES)}")
        if (await session.execute(select(Metric.id).where(Metric.key == key))).first():
            raise AlreadyExists(f"feedback key '{key}' already exists: pass it as 'existing'")
        metric = Metric(
            key=key, name=new.name, kind=new.kind, scoring_type=new.scoring_type, description=new.description or ""
        )
        session.add(metric)
        await session.flush()
    else:
        key = ref.existing if ref is not None and ref.existing else default_key
        found = await find_by_id_or_key(session, Metric, key)
        if found is not None:
            metric = found
        else:
            validate_key(key, "feedback key")
            metric = Metric(
                key=key,
                name=default_name if key == default_key else key,
                kind=default_kind,
                scoring_type="HIGHER_IS_BETTER",
                description=default_description,
            )
            session.add(metric)
            await session.flush()
    linked = await session.get(UseCaseMetric, (use_case.id, metric.id))
    if linked is None:
        session.add(UseCaseMetric(use_case_id=use_case.id, metric_id=metric.id))
        await session.flush()
    return metric


# --------------------------------------------------------------------------- configs


async def build_config(
    session: AsyncSession, grader_type: str, config: GraderConfigIn, guard: OutboundGuard, admin: bool = False
) -> dict[str, Any]:
    """The stored config of a grader, validated (and, for a remote grader, probed through the outbound guard;
    why a probe failed is told to admins only, see remote.RemoteFailure)."""
    given_type, value = config.only()
    if grader_type != given_type:
        raise InvalidInput(f"graderType {grader_type} does not match the {given_type.lower()} config given")
    if given_type == "JUDGE":
        model = await find_chat_model(session, value.model)
        criteria = (value.criteria or "").strip()
        if not criteria:
            raise InvalidInput("a judge's criteria must not be empty")
        if len(criteria) > judges.MAX_CRITERIA_CHARS:
            raise InvalidInput(f"a judge's criteria must be at most {judges.MAX_CRITERIA_CHARS} characters")
        examples = validate_examples(value.examples or [])
        system_template = value.system_template or None
        user_template = value.user_template or None
        if system_template:
            judges.validate_template(system_template, "system template")
        if user_template:
            judges.validate_template(user_template, "user template")
        return {
            "model_id": str(model.id),
            "criteria": criteria,
            "examples": examples,
            "system_template": system_template,
            "user_template": user_template,
        }
    if given_type == "PREBUILT":
        try:
            key = judges.PrebuiltKey(value.key)
        except ValueError as exc:
            raise InvalidInput(
                f"unknown prebuilt criteria '{value.key}': use one of {[k.value for k in judges.PrebuiltKey]}"
            ) from exc
        model = await find_chat_model(session, value.model)
        return {"model_id": str(model.id), "criteria": key.value}
    if given_type == "REMOTE":
        url = remote.validate_url(value.url, guard)
        try:
            async with remote.RewardServerClient(url, guard, timeout_s=PROBE_TIMEOUT_S) as client:
                info = await client.info()
        except remote.RemoteFailure as failure:
            raise failure.for_caller(admin) from None
        return {"url": url, "name": info.name, "version": info.version, "description": info.description}
    # CUSTOM
    code = custom.validate_code(value.code) if value.code is not None else None
    return {"description": value.description, "code": code}


def _default_metric(grader_type: str, config: dict[str, Any], key: str, name: str) -> tuple[str, str, str, str]:
    """(key, name, kind, description) of the feedback key used when none is given."""
    if grader_type == "PREBUILT":
        criteria = judges.PREBUILT[judges.PrebuiltKey(config["criteria"])]
        return criteria.feedback_key, criteria.name, "SCALAR", criteria.description
    kind = "BOOL" if grader_type == "JUDGE" else "SCALAR"
    return key, name, kind, f"Written by grader '{key}'"


# --------------------------------------------------------------------------- mutations


async def create_grader(
    session: AsyncSession,
    principal: Principal,
    use_case: str,
    *,
    name: str,
    key: str | None,
    grader_type: str,
    config: GraderConfigIn,
    metric: MetricRef | None,
    guard: OutboundGuard,
) -> GraderRecord:
    uc = await get_use_case(session, principal, use_case, WRITE)
    if grader_type not in GRADER_TYPES:
        raise InvalidInput(f"graderType must be one of {list(GRADER_TYPES)}")
    if not name or not name.strip():
        raise InvalidInput("a grader needs a name")
    key = key or key_from_name(name)
    validate_key(key, "grader key")
    existing = await session.execute(select(Grader.id).where(Grader.use_case_id == uc.id, Grader.key == key))
    if existing.first():
        raise AlreadyExists(f"grader '{key}' already exists in use case '{uc.key}'")
    stored = await build_config(session, grader_type, config, guard, principal.is_admin)
    m_key, m_name, m_kind, m_description = _default_metric(grader_type, stored, key, name)
    metric_row = await resolve_metric(
        session,
        uc,
        metric,
        default_key=m_key,
        default_name=m_name,
        default_kind=m_kind,
        default_description=m_description,
    )
    now = utcnow()  # one instant: created_at's own default comes later, at the flush
    grader = Grader(
        use_case_id=uc.id,
        key=key,
        name=name,
        grader_type=grader_type,
        config=stored,
        metric_id=metric_row.id,
        created_at=now,
        updated_at=now,
    )
    session.add(grader)
    await session.flush()
    await session.refresh(grader, ["use_case", "metric"])
    return GraderRecord.of(grader)


def _require_unlocked(grader: Grader, action: str) -> None:
    if grader.locked:
        raise Conflict(f"grader '{grader.key}' is locked: unlock it before you {action} it")


async def update_grader(
    session: AsyncSession,
    principal: Principal,
    use_case: str,
    id_or_key: str,
    *,
    name: str | None = None,
    grader_type: str | None = None,
    config: GraderConfigIn | None = None,
    online_rate: float | None = None,
    guard: OutboundGuard,
) -> GraderRecord:
    grader = await get_grader(session, principal, use_case, id_or_key, WRITE)
    _require_unlocked(grader, "change")
    if name is not None:
        if not name.strip():
            raise InvalidInput("a grader's name must not be empty")
        grader.name = name
    if config is not None:
        new_type = grader_type or config.only()[0]
        grader.config = await build_config(session, new_type, config, guard, principal.is_admin)
        grader.grader_type = new_type
    elif grader_type is not None and grader_type != grader.grader_type:
        raise InvalidInput("changing graderType needs the new type's graderConfig")
    if online_rate is not None:
        if not 0.0 <= online_rate <= 1.0:
            raise InvalidInput("the online grading rate must be between 0 and 1")
        if online_rate > 0 and grader.online_rate == 0:
            grader.online_cursor = utcnow()  # score traffic from now on, not the backlog
        grader.online_rate = online_rate
    grader.updated_at = utcnow()
    await session.flush()
    return GraderRecord.of(grader)


async def lock_grader(
    session: AsyncSession, principal: Principal, use_case: str, id_or_key: str, locked: bool
) -> GraderRecord:
    grader = await get_grader(session, principal, use_case, id_or_key, WRITE)
    if grader.locked != locked:
        grader.locked = locked
        grader.updated_at = utcnow()
        await session.flush()
    return GraderRecord.of(grader)


# Jobs that still run or wait; a grader they use cannot be deleted.
ACTIVE_JOB_STATUSES = ("PENDING", "RUNNING")


async def _active_jobs_using(session: AsyncSession, grader: Grader) -> list[str]:
    """Names of active jobs of the grader's use case whose arguments mention the grader (by key or id)."""
    rows = await session.execute(
        select(Job).where(Job.use_case_id == grader.use_case_id, Job.status.in_(ACTIVE_JOB_STATUSES))
    )
    return [job.name or str(job.id) for job in rows.scalars() if _mentions(job.args, grader)]


def _mentions(value: Any, grader: Grader) -> bool:
    if isinstance(value, dict):
        return any(_mentions(v, grader) for v in value.values())
    if isinstance(value, list):
        return any(_mentions(v, grader) for v in value)
    return isinstance(value, str) and value in {grader.key, str(grader.id)}


async def delete_grader(session: AsyncSession, principal: Principal, use_case: str, id_or_key: str) -> uuid.UUID:
    grader = await get_grader(session, principal, use_case, id_or_key, WRITE)
    _require_unlocked(grader, "delete")
    users = await _active_jobs_using(session, grader)
    if users:
        raise Conflict(f"grader '{grader.key}' is used by running job(s): {', '.join(users[:5])}")
    grader_id = grader.id
    await session.delete(grader)
    await session.flush()
    return grader_id
