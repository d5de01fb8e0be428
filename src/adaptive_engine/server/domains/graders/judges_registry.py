"""The judges API: versioned LLM judges of a use case (every update adds a version; the newest is current)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.lookup import parse_uuid
from adaptive_engine.server.db.models import Judge, UseCase
from adaptive_engine.server.db.session import rowcount
from adaptive_engine.server.domains.graders import judges
from adaptive_engine.server.domains.graders.records import JudgeRecord
from adaptive_engine.server.domains.graders.schemas import MetricRef, validate_examples
from adaptive_engine.server.domains.graders.service import (
    READ,
    WRITE,
    find_chat_model,
    resolve_metric,
)
from adaptive_engine.server.domains.use_cases.service import (
    get_use_case,
    key_from_name,
    validate_key,
)
from adaptive_engine.server.errors import AlreadyExists, InvalidInput, NotFound
from adaptive_engine.server.timestamps import utcnow


def _criteria(value: str | None) -> str:
    text = (value or "").strip()
    if not text:
        raise InvalidInput("a judge's criteria must not be empty")
    if len(text) > judges.MAX_CRITERIA_CHARS:
        raise InvalidInput(f"a judge's criteria must be at most {judges.MAX_CRITERIA_CHARS} characters")
    return text


async def _latest(session: AsyncSession, use_case: UseCase, key: str) -> Judge:
    row = (
        await session.execute(
            select(Judge)
            .where(Judge.use_case_id == use_case.id, Judge.key == key)
            .order_by(Judge.version.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"judge '{key}' not found in use case '{use_case.key}'")
    return row


async def _new_key(session: AsyncSession, use_case: UseCase, key: str | None, name: str) -> str:
    if not name or not name.strip():
        raise InvalidInput("a judge needs a name")
    key = key or key_from_name(name)
    validate_key(key, "judge key")
    exists = await session.execute(select(Judge.id).where(Judge.use_case_id == use_case.id, Judge.key == key))
    if exists.first():
        raise AlreadyExists(f"judge '{key}' already exists in use case '{use_case.key}'")
    return key


async def create_judge(
    session: AsyncSession,
    principal: Principal,
    use_case: str,
    *,
    key: str | None,
    name: str,
    criteria: str,
    examples: list[dict[str, Any]],
    model: str,
    metric: str | None,
) -> JudgeRecord:
    uc = await get_use_case(session, principal, use_case, WRITE)
    key = await _new_key(session, uc, key, name)
    text = _criteria(criteria)
    clean = validate_examples(examples)
    model_row = await find_chat_model(session, model)
    metric_row = await resolve_metric(
        session,
        uc,
        MetricRef(existing=metric) if metric else None,
        default_key=key,
        default_name=name,
        default_kind="BOOL",
        default_description=f"Written by judge '{key}'",
    )
    now = utcnow()  # one instant: created_at's own default comes later, at the flush
    judge = Judge(
        use_case_id=uc.id,
        key=key,
        version=1,
        name=name,
        criteria=text,
        examples=clean,
        model_id=model_row.id,
        metric_id=metric_row.id,
        created_at=now,
        updated_at=now,
    )
    session.add(judge)
    await session.flush()
    await session.refresh(judge, ["model", "metric"])
    return JudgeRecord.of(judge)


async def create_prebuilt_judge(
    session: AsyncSession, principal: Principal, use_case: str, *, key: str | None, name: str, model: str, prebuilt: str
) -> JudgeRecord:
    uc = await get_use_case(session, principal, use_case, WRITE)
    key = await _new_key(session, uc, key, name)
    try:
        criteria = judges.PREBUILT[judges.PrebuiltKey(prebuilt)]
    except ValueError as exc:
        raise InvalidInput(f"unknown prebuilt criteria '{prebuilt}'") from exc
    model_row = await find_chat_model(session, model)
    metric_row = await resolve_metric(
        session,
        uc,
        None,
        default_key=criteria.feedback_key,
        default_name=criteria.name,
        default_kind="SCALAR",
        default_description=criteria.description,
    )
    now = utcnow()  # one instant: created_at's own default comes later, at the flush
    judge = Judge(
        use_case_id=uc.id,
        key=key,
        version=1,
        name=name,
        criteria=None,
        prebuilt=criteria.key.value,
        examples=[],
        model_id=model_row.id,
        metric_id=metric_row.id,
        created_at=now,
        updated_at=now,
    )
    session.add(judge)
    await session.flush()
    await session.refresh(judge, ["model", "metric"])
    return JudgeRecord.of(judge)


async def get_judge(
    session: AsyncSession, principal: Principal, use_case: str, id_or_key: str, version: int | None = None
) -> JudgeRecord:
    uc = await get_use_case(session, principal, use_case, READ)
    as_uuid = parse_uuid(id_or_key)
    if as_uuid is not None:
        row = await session.get(Judge, as_uuid)
        if row is not None and row.use_case_id == uc.id and (version is None or row.version == version):
            return JudgeRecord.of(row)
    if version is None:
        return JudgeRecord.of(await _latest(session, uc, str(id_or_key)))
    row = (
        await session.execute(
            select(Judge).where(Judge.use_case_id == uc.id, Judge.key == str(id_or_key), Judge.version == version)
        )
    ).scalar_one_or_none()
    if row is None:
        raise NotFound(f"judge '{id_or_key}' version {version} not found in use case '{uc.key}'")
    return JudgeRecord.of(row)


async def list_judges(session: AsyncSession, principal: Principal, use_case: str) -> list[JudgeRecord]:
    uc = await get_use_case(session, principal, use_case, READ)
    newest = (
        select(Judge.key, func.max(Judge.version).label("v"))
        .where(Judge.use_case_id == uc.id)
        .group_by(Judge.key)
        .subquery()
    )
    rows = await session.execute(
        select(Judge)
        .join(newest, (Judge.key == newest.c.key) & (Judge.version == newest.c.v))
        .where(Judge.use_case_id == uc.id)
        .order_by(Judge.key)
    )
    return [JudgeRecord.of(j) for j in rows.scalars()]


async def judge_versions(session: AsyncSession, principal: Principal, use_case: str, key: str) -> list[JudgeRecord]:
    uc = await get_use_case(session, principal, use_case, READ)
    rows = list(
        (
            await session.execute(
                select(Judge).where(Judge.use_case_id == uc.id, Judge.key == key).order_by(Judge.version.desc())
            )
        ).scalars()
    )
    if not rows:
        raise NotFound(f"judge '{key}' not found in use case '{uc.key}'")
    return [JudgeRecord.of(j) for j in rows]


async def update_judge(
    session: AsyncSession,
    principal: Principal,
    use_case: str,
    key: str,
    *,
    name: str | None,
    criteria: str | None,
    examples: list[dict[str, Any]] | None,
    model: str | None,
) -> JudgeRecord:
    uc = await get_use_case(session, principal, use_case, WRITE)
    current = await _latest(session, uc, key)
    if current.prebuilt and (criteria is not None or examples is not None):
        raise InvalidInput("a prebuilt judge's criteria and examples cannot be changed")
    if name is not None and not name.strip():
        raise InvalidInput("a judge's name must not be empty")
    model_id = (await find_chat_model(session, model)).id if model is not None else current.model_id
    now = utcnow()  # one instant: created_at's own default comes later, at the flush
    judge = Judge(
        use_case_id=uc.id,
        key=key,
        version=current.version + 1,
        name=name or current.name,
        criteria=_criteria(criteria) if criteria is not None else current.criteria,
        prebuilt=current.prebuilt,
        examples=validate_examples(examples) if examples is not None else list(current.examples or []),
        model_id=model_id,
        metric_id=current.metric_id,
        created_at=now,
        updated_at=now,
    )
    session.add(judge)
    await session.flush()
    await session.refresh(judge, ["model", "metric"])
    return JudgeRecord.of(judge)


async def delete_judge(session: AsyncSession, principal: Principal, use_case: str, key: str) -> int:
    uc = await get_use_case(session, principal, use_case, WRITE)
    await _latest(session, uc, key)
    result = await session.execute(delete(Judge).where(Judge.use_case_id == uc.id, Judge.key == key))
    return int(rowcount(result) or 0)
