"""Interactions: logging production traffic (with inline feedback) and reading it back.

Writes go through the group-commit writer (``ingest.py``): validation happens here on the request's
session, then the rows are handed over ready; the call returns once they are committed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.base import new_id
from adaptive_engine.server.db.lookup import find_by_id_or_key, parse_uuid
from adaptive_engine.server.db.pagination import Page, SortKey, paginate
from adaptive_engine.server.domains.feedback_keys.records import MetricRecord
from adaptive_engine.server.domains.feedback_keys.service import (
    coerce_value,
    feedback_flags,
    get_key,
)
from adaptive_engine.server.domains.interactions import repository
from adaptive_engine.server.domains.interactions.ingest import (
    IngestWriter,
    Rows,
    completion_row,
    insert_rows,
)
from adaptive_engine.server.domains.interactions.records import CompletionRecord, FeedbackRecord
from adaptive_engine.server.domains.models.records import ModelRecord
from adaptive_engine.server.domains.usage.rollups import UnstoredCall
from adaptive_engine.server.domains.use_cases.service import UseCaseRecord, get_use_case, refuse_archived
from adaptive_engine.server.errors import DomainError, InvalidInput, NotFound
from adaptive_engine.server.timestamps import parse_datetime

log = logging.getLogger("adaptive_engine.interactions")

MAX_BATCH = 1000


# ---------------------------------------------------------------------------------------------
# Shared helpers (also used by the feedback domain and by inference)


def prompt_hash(messages: Sequence[dict[str, Any]]) -> str:
    canonical = json.dumps(
        [[m.get("role"), m.get("content")] for m in messages], ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def _content_text(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return "".join(texts) if texts else None
    return None


def normalize_messages(messages: Sequence[Any] | None, where: str, prompt: str | None = None) -> list[dict[str, str]]:
    """Chat messages as stored ([{"role", "content"}]); INVALID_INPUT names the bad message."""
    if not messages:
        if prompt:
            return [{"role": "user", "content": prompt}]
        raise InvalidInput(f"{where}: messages must not be empty")
    out = []
    for i, message in enumerate(messages):
        data = message if isinstance(message, dict) else message.model_dump()
        role, content = data.get("role"), _content_text(data.get("content"))
        if not isinstance(role, str) or not role.strip():
            raise InvalidInput(f"{where}.messages[{i}]: a message needs a role")
        if content is None or not content.strip():
            raise InvalidInput(f"{where}.messages[{i}]: a message needs content")
        out.append({"role": role, "content": content})
    return out


def parse_time(value: Any, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_datetime(value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise InvalidInput(f"{where}: not a date-time: {value!r}") from exc


async def resolve_model(session: AsyncSession, model: str, where: str, lookups: Any = None) -> Any:
    found = await (
        lookups.model(session, model) if lookups is not None else find_by_id_or_key(session, orm.Model, model)
    )
    if found is None:
        raise NotFound(f"{where}: model '{model}' not found")
    return found


async def resolve_ab_campaign(
    session: AsyncSession, value: str, where: str, use_case_id: uuid.UUID | None = None
) -> uuid.UUID:
    """The id of an A/B campaign given by id or key (the campaigns table belongs to the A/B test domain)."""
    campaign_model = getattr(orm, "AbCampaign", None)
    if campaign_model is not None:
        found = await find_by_id_or_key(session, campaign_model, value)
        if found is None:
            raise NotFound(f"{where}: A/B campaign '{value}' not found")
        if use_case_id is not None and found.use_case_id != use_case_id:
            raise InvalidInput(f"{where}: A/B campaign '{value}' belongs to another use case")
        return found.id
    as_uuid = parse_uuid(value)
    if as_uuid is None:
        raise NotFound(f"{where}: A/B campaign '{value}' not found")
    return as_uuid


async def writable_use_case(session: AsyncSession, principal: Principal, lookups: Any, id_or_key: str) -> orm.UseCase:
    """The use case (cached lookup) if the caller may log on it."""
    use_case = await lookups.use_case(session, id_or_key)
    what = f"use case '{id_or_key}'"
    if use_case is None:
        raise NotFound(f"{what} not found")
    await principal.require(session, "feedback:write", use_case.id, what)
    refuse_archived(use_case)
    return use_case


async def ingest(session: AsyncSession, writer: IngestWriter, rows: Rows) -> None:
    """End the request's read transaction (so it holds no connection while waiting), then write."""
    if not getattr(session, "never_opened", False):  # a LazySession answered from caches has none to end
        await session.rollback()
    await writer.write(rows)


# ---------------------------------------------------------------------------------------------
# The completion-writing path for inference


@dataclass
class NewCompletion:
    """A completion served by the platform, to record. ``id`` is known before the write."""

    use_case_id: uuid.UUID
    messages: list[dict[str, Any]]
    completion: str | None
    model_id: uuid.UUID | None = None
    model_key: str | None = None
    source: str = "LIVE"
    session_id: uuid.UUID | None = None
    user: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    request_id: uuid.UUID | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    latency_ms: float | None = None
    finish_reason: str | None = None
    ab_campaign_id: uuid.UUID | None = None
    # The answer's tool calls, as the model returned them (OpenAI's shape).
    tool_calls: list[dict[str, Any]] | None = None
    # The model service's system prompt template whose text leads ``messages`` (None: the caller's own).
    system_prompt_template_id: uuid.UUID | None = None
    id: uuid.UUID = field(default_factory=new_id)
    created_at: datetime | None = None
    # Who called, and what it cost (dollars), for the usage roll-ups and budgets.
    api_key_id: uuid.UUID | None = None
    user_id: uuid.UUID | None = None
    cost: float | None = None


# Keys of a served prompt's messages kept beside role and content: a tool-use conversation stays whole.
_TOOL_KEYS = ("name", "tool_calls", "tool_call_id")


def _stored_message(message: dict[str, Any]) -> dict[str, Any]:
    out = {"role": message.get("role"), "content": _content_text(message.get("content")) or ""}
    for key in _TOOL_KEYS:
        if message.get(key) is not None:
            out[key] = message[key]
    return out


def completion_rows(completions: Sequence[NewCompletion]) -> Rows:
    rows = Rows()
    for c in completions:
        messages = [_stored_message(m) for m in c.messages]
        rows.add(
            orm.Completion,
            completion_row(
                id=c.id,
                created_at=c.created_at,
                use_case_id=c.use_case_id,
                messages=messages,
                completion=c.completion,
                prompt_hash=prompt_hash(messages),
                model_id=c.model_id,
                model_key=c.model_key,
                source=c.source,
                session_id=c.session_id,
                user_ref=c.user,
                labels=c.labels,
                request_id=c.request_id,
                prompt_tokens=c.prompt_tokens,
                completion_tokens=c.completion_tokens,
                latency_ms=c.latency_ms,
                finish_reason=c.finish_reason,
                ab_campaign_id=c.ab_campaign_id,
                tool_calls=c.tool_calls,
                system_prompt_template_id=c.system_prompt_template_id,
                api_key_id=c.api_key_id,
                user_id=c.user_id,
                cost=c.cost,
            ),
        )
    return rows


class WithIngest(Protocol):
    ingest: IngestWriter


async def record_completions(
    state: WithIngest | None,
    completions: Sequence[NewCompletion],
    session: AsyncSession | None = None,
    *,
    wait: bool = True,
) -> list[uuid.UUID]:
    """Store served completions; return their ids once committed (``wait=False``: once queued).

    ``state`` is the platform (its ``ingest`` writer groups concurrent calls into one commit). With ``session``,
    the rows are added to that session's transaction instead and the caller commits."""
    rows = completion_rows(completions)
    if session is not None:
        await insert_rows(session, rows)
    elif state is None:
        raise ValueError("record_completions needs the ingest writer or a session")
    elif wait:
        await state.ingest.write(rows)
    else:
        state.ingest.submit(rows)
    return [c.id for c in completions]


def record_failure(
    state: WithIngest,
    *,
    use_case_id: uuid.UUID,
    model_key: str | None,
    error: BaseException,
    api_key_id: uuid.UUID | None = None,
    user_id: uuid.UUID | None = None,
) -> None:
    """Count a failed model call in the use case's activity (queued; never raises: the caller is already
    answering with the error itself)."""
    code = error.code if isinstance(error, DomainError) else "INTERNAL"
    rows = Rows()
    rows.add(
        orm.InferenceError,
        {
            "use_case_id": use_case_id,
            "model_key": model_key,
            "code": code[:40],
            "api_key_id": api_key_id,
            "user_id": user_id,
        },
    )
    try:
        state.ingest.submit(rows)
    except DomainError:
        log.warning("a failed call could not be counted: the ingest writer is not running")


def record_unstored(state: WithIngest, row: dict[str, Any]) -> None:
    """Count a call served but not stored (``store: false``, embeddings) in the usage roll-ups, hence in the
    budgets: ``row`` has a completion's usage columns (use_case_id, model_key, api_key_id, user_id, tokens,
    cost, latency_ms). Queued; never raises (the answer is already made)."""
    rows = Rows()
    rows.add(UnstoredCall, row)
    try:
        state.ingest.submit(rows)
    except DomainError:
        log.warning("a served call could not be counted: the ingest writer is not running")


# ---------------------------------------------------------------------------------------------
# interactions.create


@dataclass
class CreatedInteraction:
    completion_id: uuid.UUID
    session_id: uuid.UUID
    feedback_ids: list[uuid.UUID]


async def prepare_interaction(
    session: AsyncSession, principal: Principal, body: Any, where: str, rows: Rows, lookups: Any
) -> CreatedInteraction:
    """Validate one interaction (REST body shape) and add its rows to ``rows``."""
    try:
        use_case = await writable_use_case(session, principal, lookups, body.use_case)
    except DomainError as error:
        error.message = f"{where}: {error.message}"
        raise
    messages = normalize_messages(body.messages, where, body.prompt)
    if body.model_service:
        model = await resolve_model(session, body.model_service, where, lookups)
    else:
        model = await lookups.default_model(session, use_case.id)
    ab_campaign_id = (
        await resolve_ab_campaign(session, body.ab_campaign, where, use_case.id) if body.ab_campaign else None
    )
    created_at = parse_time(body.created_at, f"{where}.created_at")
    session_id = body.session_id or new_id()
    user_ref = str(body.user) if body.user else None
    completion = rows.add(
        orm.Completion,
        completion_row(
            use_case_id=use_case.id,
            messages=messages,
            completion=body.completion,
            prompt_hash=prompt_hash(messages),
            model_id=model.id if model else None,
            model_key=model.key if model else None,
            source="OFFLINE",
            session_id=session_id,
            user_ref=user_ref,
            labels=dict(body.labels or {}),
            ab_campaign_id=ab_campaign_id,
            created_at=created_at,
        ),
    )
    feedback_ids = []
    for j, fb in enumerate(body.feedbacks or []):
        at = f"{where}.feedbacks[{j}]"
        try:
            metric = await get_key(session, fb.metric, lookups)
        except NotFound as error:
            raise NotFound(f"{at}: {error.message}") from None
        row = rows.add(
            orm.Feedback,
            {
                "id": new_id(),
                "created_at": parse_time(fb.created_at, f"{at}.created_at") or completion["created_at"],
                "completion_id": completion["id"],
                "metric_id": metric.id,
                "use_case_id": use_case.id,
                "value": coerce_value(metric, fb.value, f"{at}.value"),
                "reason": fb.reason,
                "details": fb.details,
                "user_ref": user_ref,
            },
        )
        rows.links.add((use_case.id, metric.id))
        feedback_ids.append(row["id"])
    return CreatedInteraction(completion["id"], session_id, feedback_ids)


async def create_interactions(
    session: AsyncSession, principal: Principal, writer: IngestWriter, bodies: Sequence[Any], *, batch: bool
) -> list[CreatedInteraction]:
    """Log interactions; a batch is validated whole before anything is written, and written at once."""
    if batch and not bodies:
        raise InvalidInput("the batch is empty")
    if len(bodies) > MAX_BATCH:
        raise InvalidInput(f"a batch holds at most {MAX_BATCH} interactions, not {len(bodies)}")
    rows = Rows()
    created = []
    for i, body in enumerate(bodies):
        created.append(
            await prepare_interaction(
                session, principal, body, f"interactions[{i}]" if batch else "interaction", rows, writer.lookups
            )
        )
    await ingest(session, writer, rows)
    return created


# ---------------------------------------------------------------------------------------------
# Reading: get, list, grouped list. Pages are hydrated with a fixed number of queries.


@dataclass
class ComparisonView:
    id: uuid.UUID
    created_at: datetime
    # 'good' or 'bad' when both completions tied; None when the preferred one won.
    tied: str | None
    use_case: UseCaseRecord
    metric: MetricRecord
    preferred: CompletionView
    other: CompletionView


@dataclass
class CompletionView:
    completion: CompletionRecord
    model: ModelRecord | None
    # None when not hydrated (the sides of a comparison): resolvers then load them on demand.
    feedbacks: list[FeedbackRecord] | None = None
    comparisons: list[ComparisonView] | None = None


@dataclass
class Hydration:
    views: list[CompletionView]
    # metric id -> (has direct feedbacks, has comparison feedbacks)
    metric_flags: dict[uuid.UUID, tuple[bool, bool]]


async def hydrate(session: AsyncSession, completions: Sequence[orm.Completion]) -> Hydration:
    ids = [c.id for c in completions]
    feedbacks = (
        (
            await session.execute(
                select(orm.Feedback)
                .where(orm.Feedback.completion_id.in_(ids))
                .order_by(orm.Feedback.created_at, orm.Feedback.id)
            )
        )
        .scalars()
        .all()
        if ids
        else []
    )
    comparisons = (
        (
            await session.execute(
                select(orm.Comparison)
                .where(
                    or_(orm.Comparison.preferred_completion_id.in_(ids), orm.Comparison.other_completion_id.in_(ids))
                )
                .order_by(orm.Comparison.created_at, orm.Comparison.id)
            )
        )
        .scalars()
        .all()
        if ids
        else []
    )
    side_ids = {c.preferred_completion_id for c in comparisons} | {c.other_completion_id for c in comparisons}
    known = {c.id: c for c in completions}
    missing = side_ids - set(known)
    if missing:
        for c in (await session.execute(select(orm.Completion).where(orm.Completion.id.in_(missing)))).scalars():
            known[c.id] = c
    model_ids = {c.model_id for c in known.values() if c.model_id}
    models = (
        {m.id: m for m in (await session.execute(select(orm.Model).where(orm.Model.id.in_(model_ids)))).scalars()}
        if model_ids
        else {}
    )
    metric_ids = {f.metric_id for f in feedbacks} | {c.metric_id for c in comparisons}
    metrics = (
        {m.id: m for m in (await session.execute(select(orm.Metric).where(orm.Metric.id.in_(metric_ids)))).scalars()}
        if metric_ids
        else {}
    )
    use_case_ids = {c.use_case_id for c in comparisons}
    use_cases = (
        {
            u.id: u
            for u in (await session.execute(select(orm.UseCase).where(orm.UseCase.id.in_(use_case_ids)))).scalars()
        }
        if use_case_ids
        else {}
    )
    flags = await feedback_flags(session, metric_ids)

    def bare(c: orm.Completion) -> CompletionView:
        model = models.get(c.model_id) if c.model_id else None
        return CompletionView(CompletionRecord.of(c), ModelRecord.of(model) if model is not None else None)

    views = []
    for c in completions:
        view = bare(c)
        view.feedbacks = [FeedbackRecord.of(f, metrics[f.metric_id]) for f in feedbacks if f.completion_id == c.id]
        view.comparisons = [
            ComparisonView(
                id=cmp.id,
                created_at=cmp.created_at,
                tied=cmp.tied,
                use_case=UseCaseRecord.of(use_cases[cmp.use_case_id]),
                metric=MetricRecord.of(metrics[cmp.metric_id]),
                preferred=bare(known[cmp.preferred_completion_id]),
                other=bare(known[cmp.other_completion_id]),
            )
            for cmp in comparisons
            if c.id in (cmp.preferred_completion_id, cmp.other_completion_id)
        ]
        views.append(view)
    return Hydration(views, flags)


async def hydrate_by_id(session: AsyncSession, completion_ids: Sequence[uuid.UUID]) -> Hydration:
    """``hydrate`` of the completions with these ids (those that exist), in that order."""
    found = {
        c.id: c
        for c in (await session.execute(select(orm.Completion).where(orm.Completion.id.in_(completion_ids)))).scalars()
    }
    return await hydrate(session, [found[i] for i in completion_ids if i in found])


async def get_interaction(
    session: AsyncSession, principal: Principal, *, use_case: str, completion_id: uuid.UUID
) -> Hydration:
    found_use_case = await get_use_case(session, principal, use_case, "use_case:read")
    completion = await session.get(orm.Completion, completion_id)
    if completion is None or completion.use_case_id != found_use_case.id:
        raise NotFound(f"interaction '{completion_id}' not found in use case '{found_use_case.key}'")
    return await hydrate(session, [completion])


# The fields interactions can be ordered by (the engine's Completion fields and usage metadata), each
# under its snake_case and camelCase names. None = creation time, the pager's default key.
ORDER_COLUMNS: dict[str, Any] = {
    "created_at": None,
    "createdAt": None,
    "id": orm.Completion.id,
    "model": orm.Completion.model_key,
    "source": orm.Completion.source,
    "prompt_hash": orm.Completion.prompt_hash,
    "promptHash": orm.Completion.prompt_hash,
    "completion": orm.Completion.completion,
    "finish_reason": orm.Completion.finish_reason,
    "finishReason": orm.Completion.finish_reason,
    "prompt_tokens": orm.Completion.prompt_tokens,
    "promptTokens": orm.Completion.prompt_tokens,
    "completion_tokens": orm.Completion.completion_tokens,
    "completionTokens": orm.Completion.completion_tokens,
    "latency_ms": orm.Completion.latency_ms,
    "latencyMs": orm.Completion.latency_ms,
    "cost": orm.Completion.cost,
}


@dataclass(frozen=True)
class CompletionOrder:
    sort: SortKey | None
    descending: bool


def completion_order(order: Sequence[Any] | None) -> CompletionOrder:
    """One field of ORDER_COLUMNS, ASC or DESC; newest first when none is given. Ties break on id."""
    if not order:
        return CompletionOrder(None, True)
    if len(order) > 1:
        raise InvalidInput("interactions can be ordered by one field only")
    pair = order[0]
    if pair.field not in ORDER_COLUMNS:
        raise InvalidInput(
            f"order.field: cannot order interactions by '{pair.field}'; use one of {', '.join(ORDER_COLUMNS)}"
        )
    direction = str(getattr(pair.order, "value", pair.order)).upper()
    if direction not in ("ASC", "DESC"):
        raise InvalidInput(f"order.order: '{pair.order}' is not ASC or DESC")
    column = ORDER_COLUMNS[pair.field]
    # Cursors carry the column's own name, so camelCase and snake_case spellings share cursors.
    return CompletionOrder(None if column is None else SortKey(column.key, column), direction == "DESC")


@dataclass
class InteractionPage:
    hydration: Hydration
    page: Page
    total_count: int


async def list_interactions(
    session: AsyncSession,
    principal: Principal,
    *,
    use_case: str,
    flt: Any = None,
    page: Any = None,
    order: Sequence[Any] | None = None,
    ab_campaign: str | None = None,
) -> InteractionPage:
    found_use_case = await get_use_case(session, principal, use_case, "use_case:read")
    campaign_id = (
        await resolve_ab_campaign(session, ab_campaign, "abCampaign", found_use_case.id) if ab_campaign else None
    )
    conditions = await repository.completion_filter(session, found_use_case.id, flt, campaign_id)
    result = await page_completions(session, conditions, page, completion_order(order))
    total = (await session.execute(select(func.count()).select_from(orm.Completion).where(*conditions))).scalar_one()
    return InteractionPage(await hydrate(session, result.items), result, int(total))


async def page_completions(
    session: AsyncSession,
    conditions: list[Any],
    page: Any,
    order: CompletionOrder,
    *,
    ignore_group_cursors: bool = False,
) -> Page:
    first = getattr(page, "first", None)
    last = getattr(page, "last", None)
    after = getattr(page, "after", None)
    before = getattr(page, "before", None)
    if getattr(page, "offset", None):
        raise InvalidInput("offset paging is not supported for interactions: use the after/before cursors")
    if ignore_group_cursors:
        after = None if after and after.startswith(GROUP_CURSOR) else after
        before = None if before and before.startswith(GROUP_CURSOR) else before
    return await paginate(
        session,
        select(orm.Completion).where(*conditions),
        orm.Completion,
        first=first,
        last=last,
        after=after,
        before=before,
        newest_first=order.descending,
        sort=order.sort,
    )


# ----- grouped


GROUP_CURSOR = "group:"
GROUP_COLUMNS = {"MODEL": orm.Completion.model_key, "PROMPT": orm.Completion.prompt_hash}


@dataclass
class GroupStats:
    metric: MetricRecord
    feedbacks: int
    average: float | None
    max: float | None
    min: float | None
    stddev: float | None
    sum: float | None


@dataclass
class Group:
    key: str | None
    count: int
    stats: list[GroupStats]
    # To list the group's completions: the listing's conditions plus the group's key.
    conditions: list[Any]


@dataclass
class GroupedPage:
    group_by: str
    groups: list[Group]
    total_count: int
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None
    metric_flags: dict[uuid.UUID, tuple[bool, bool]]


def _group_cursor(offset: int) -> str:
    return f"{GROUP_CURSOR}{offset}"


def _group_offset(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    if not cursor.startswith(GROUP_CURSOR) or not cursor[len(GROUP_CURSOR) :].isdigit():
        raise InvalidInput(f"invalid group cursor '{cursor}'")
    return int(cursor[len(GROUP_CURSOR) :])


async def list_grouped(
    session: AsyncSession,
    principal: Principal,
    *,
    use_case: str,
    group_by: str,
    flt: Any = None,
    page: Any = None,
    order: Sequence[Any] | None = None,
    ab_campaign: str | None = None,
) -> GroupedPage:
    """Interactions grouped by model or by prompt, with counts and direct-feedback aggregates per key.

    Groups are paged by offset cursors ("group:<n>") in the order asked ("group" key or "count")."""
    found_use_case = await get_use_case(session, principal, use_case, "use_case:read")
    campaign_id = (
        await resolve_ab_campaign(session, ab_campaign, "abCampaign", found_use_case.id) if ab_campaign else None
    )
    conditions = await repository.completion_filter(session, found_use_case.id, flt, campaign_id)
    key_col = GROUP_COLUMNS[group_by]
    count = func.count(orm.Completion.id)
    order = list(order or [])
    if len(order) > 1:
        raise InvalidInput("groups can be ordered by one field only")
    field_name, direction = (
        ("group", "ASC")
        if not order
        else (order[0].field, str(getattr(order[0].order, "value", order[0].order)).upper())
    )
    if field_name not in ("group", "key", "count"):
        raise InvalidInput(f"cannot order groups by '{field_name}': use 'group' or 'count'")
    sort = count if field_name == "count" else key_col
    ordering = [sort.desc() if direction == "DESC" else sort.asc(), key_col.asc()]
    grouped = select(key_col.label("key"), count.label("n")).where(*conditions).group_by(key_col)
    total = int((await session.execute(select(func.count()).select_from(grouped.subquery()))).scalar_one())

    first, last = getattr(page, "first", None), getattr(page, "last", None)
    after, before = _group_offset(getattr(page, "after", None)), _group_offset(getattr(page, "before", None))
    size = first if first is not None else last if last is not None else 100
    if not 0 <= size <= 1000:
        raise InvalidInput("page size must be between 0 and 1000")
    start = after + 1 if after is not None else 0
    end = before if before is not None else total
    if last is not None and first is None:
        start = max(start, end - size)
    stop = min(end, start + size)
    rows = (await session.execute(grouped.order_by(*ordering).offset(start).limit(max(stop - start, 0)))).all()

    keys = [r.key for r in rows]
    stats_by_key: dict[Any, list[GroupStats]] = {k: [] for k in keys}
    metric_ids: set[uuid.UUID] = set()
    if rows:
        value = orm.Feedback.value
        n = func.count(value)
        key_filter: ColumnElement[bool] = key_col.in_([k for k in keys if k is not None])
        if None in keys:
            key_filter = or_(key_filter, key_col.is_(None))
        stat_rows = (
            await session.execute(
                select(
                    key_col.label("key"),
                    orm.Feedback.metric_id,
                    n.label("n"),
                    func.avg(value).label("avg"),
                    func.max(value).label("max"),
                    func.min(value).label("min"),
                    func.sum(value).label("sum"),
                    ((func.sum(value * value) - func.sum(value) * func.sum(value) / n) / func.nullif(n - 1, 0)).label(
                        "var"
                    ),
                )
                .join(orm.Feedback, orm.Feedback.completion_id == orm.Completion.id)
                .where(*conditions, key_filter)
                .group_by(key_col, orm.Feedback.metric_id)
            )
        ).all()
        metric_ids = {r.metric_id for r in stat_rows}
        metrics = (
            {
                m.id: m
                for m in (await session.execute(select(orm.Metric).where(orm.Metric.id.in_(metric_ids)))).scalars()
            }
            if metric_ids
            else {}
        )
        for r in stat_rows:
            var = max(float(r.var), 0.0) if r.var is not None else None
            stats_by_key[r.key].append(
                GroupStats(
                    metric=MetricRecord.of(metrics[r.metric_id]),
                    feedbacks=int(r.n),
                    average=float(r.avg) if r.avg is not None else None,
                    max=float(r.max) if r.max is not None else None,
                    min=float(r.min) if r.min is not None else None,
                    stddev=var**0.5 if var is not None else None,
                    sum=float(r.sum) if r.sum is not None else None,
                )
            )
        for values in stats_by_key.values():
            values.sort(key=lambda s: s.metric.key)
    groups = [
        Group(
            key=r.key,
            count=int(r.n),
            stats=stats_by_key[r.key],
            conditions=[*conditions, key_col.is_(None) if r.key is None else key_col == r.key],
        )
        for r in rows
    ]
    return GroupedPage(
        group_by=group_by,
        groups=groups,
        total_count=total,
        has_next_page=stop < end if before is None else True,
        has_previous_page=start > 0,
        start_cursor=_group_cursor(start) if rows else None,
        end_cursor=_group_cursor(stop - 1) if rows else None,
        metric_flags=await feedback_flags(session, metric_ids),
    )


async def list_group_completions(
    session: AsyncSession, group: Group, page: Any, order: Sequence[Any] | None
) -> Hydration:
    result = await page_completions(session, group.conditions, page, completion_order(order), ignore_group_cursors=True)
    return await hydrate(session, result.items)
