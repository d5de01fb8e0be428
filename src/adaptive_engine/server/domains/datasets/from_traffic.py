"""Datasets from traffic: completions selected by the interactions' filter language, written as dataset rows.

The selection is one SQL query, read through a streaming cursor in partitions and written to the dataset file
as it comes, so memory stays flat whatever the size. Small selections are written within the request; larger
ones in the background (:class:`DatasetBuilds`), the dataset PROCESSING with its progress until READY or FAILED.

Which rows each kind gets:

* PROMPT: one row per distinct prompt (its latest completion's messages);
* PROMPT_COMPLETION: one row per prompt, the chosen completion: the one with the highest value of the first of
  ``metrics`` when given, else the latest;
* PROMPT_COMPLETION_FEEDBACK: every selected completion with feedback on ``metrics`` (any key when not given),
  its values as ``feedback``;
* PREFERENCE: every decisive comparison (ties left out) whose preferred completion is selected, on ``metrics``
  (any key when not given): ``chosen`` the preferred completion, ``rejected`` the other.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Select, exists, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.base import new_id
from adaptive_engine.server.db.lookup import parse_uuid
from adaptive_engine.server.db.models import Comparison, Completion, Dataset, Feedback, Metric, UseCase
from adaptive_engine.server.db.session import after_commit
from adaptive_engine.server.domains.datasets.export import dataset_messages, feedback_values
from adaptive_engine.server.domains.datasets.formats import RowError, Summary, Validator
from adaptive_engine.server.domains.datasets.service import add_stored, check_can_create
from adaptive_engine.server.domains.feedback_keys.service import get_key
from adaptive_engine.server.domains.interactions.repository import completion_filter
from adaptive_engine.server.domains.interactions.service import resolve_ab_campaign
from adaptive_engine.server.domains.use_cases.service import get_use_case, validate_key
from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.jobs.storage import FileStore

log = logging.getLogger("adaptive_engine")

KINDS = ("PROMPT", "PROMPT_COMPLETION", "PROMPT_COMPLETION_FEEDBACK", "PREFERENCE")
SELECTION_TYPES = ("ALL", "RANDOM", "LAST")
# Rows fetched per round trip of the streaming cursor.
PARTITION_ROWS = 1000
PREVIEW_ROWS = 5


@dataclass
class Plan:
    """What a dataset from filters will hold, checked and resolved."""

    use_case: UseCase
    kind: str
    conditions: list[Any]
    metrics: list[Metric] = field(default_factory=list)
    selection_type: str = "ALL"
    sample_size: int | None = None

    def query(self) -> Select[Any]:
        """The rows to write, in order (kind-specific columns, see :func:`_row`)."""
        if self.kind == "PREFERENCE":
            return self._preferences()
        base = Completion.completion.is_not(None) & (func.length(func.trim(Completion.completion)) > 0)
        conditions = [*self.conditions, base]
        if self.kind == "PROMPT_COMPLETION_FEEDBACK":
            has_feedback = [Feedback.completion_id == Completion.id]
            if self.metrics:
                has_feedback.append(Feedback.metric_id.in_([m.id for m in self.metrics]))
            query = select(*_COMPLETION_COLUMNS).where(*conditions, exists().where(*has_feedback))
            return self._sampled(query, Completion.created_at, Completion.id)
        # One completion per prompt: the best on the first metric, else the latest.
        order: list[Any] = []
        if self.kind == "PROMPT_COMPLETION" and self.metrics:
            score = (
                select(func.max(Feedback.value))
                .where(Feedback.completion_id == Completion.id, Feedback.metric_id == self.metrics[0].id)
                .scalar_subquery()
            )
            order.append(score.desc().nulls_last())
        order += [Completion.created_at.desc(), Completion.id.desc()]
        rank = func.row_number().over(partition_by=Completion.prompt_hash, order_by=order).label("rank")
        ranked = select(Completion.id.label("chosen_id"), rank).where(*conditions).subquery()
        query = select(*_COMPLETION_COLUMNS).join(ranked, ranked.c.chosen_id == Completion.id).where(ranked.c.rank == 1)
        return self._sampled(query, Completion.created_at, Completion.id)

    def _preferences(self) -> Select[Any]:
        other = aliased(Completion)
        conditions = [
            *self.conditions,
            Comparison.tied.is_(None),
            Completion.completion.is_not(None),
            other.completion.is_not(None),
        ]
        if self.metrics:
            conditions.append(Comparison.metric_id.in_([m.id for m in self.metrics]))
        query = (
            select(
                Comparison.id,
                Completion.messages,
                Completion.completion,
                other.completion,
                Completion.labels,
                Metric.key,
            )
            .join(Completion, Completion.id == Comparison.preferred_completion_id)
            .join(other, other.id == Comparison.other_completion_id)
            .join(Metric, Metric.id == Comparison.metric_id)
            .where(*conditions)
        )
        return self._sampled(query, Comparison.created_at, Comparison.id)

    def _sampled(self, query: Select[Any], created: Any, row_id: Any) -> Select[Any]:
        if self.selection_type == "RANDOM":
            return query.order_by(func.random()).limit(self.sample_size)
        if self.selection_type == "LAST":
            return query.order_by(created.desc(), row_id.desc()).limit(self.sample_size)
        return query.order_by(created, row_id)


_COMPLETION_COLUMNS = (Completion.id, Completion.messages, Completion.completion, Completion.labels)


def _value(value: Any) -> Any:
    return getattr(value, "value", value)


async def plan_from_input(session: AsyncSession, principal: Principal, inp: Any) -> Plan:
    """Check a ``DatasetCreateFromFilters``-shaped input and resolve it to a :class:`Plan` (nothing written)."""
    kind = str(_value(inp.kind))
    if kind not in KINDS:
        raise InvalidInput(f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
    use_case = await get_use_case(session, principal, inp.use_case, "use_case:read")
    query = inp.completion_query
    given = [
        name for name in ("from_selection", "from_filters", "from_groups") if getattr(query, name, None) is not None
    ]
    if len(given) != 1:
        raise InvalidInput(
            "completionQuery needs exactly one of fromSelection, fromFilters (fromGroups is not supported)"
        )
    if given[0] == "from_groups":
        raise InvalidInput("completionQuery.fromGroups is not supported: select with fromFilters or fromSelection")
    if getattr(inp, "feedback_filters", None) is not None and inp.feedback_filters.labels:
        raise InvalidInput("feedbackFilters.labels: feedback carries no labels on this platform")
    if given[0] == "from_selection":
        ids = [_completion_id(v, "completionQuery.fromSelection.include") for v in query.from_selection.include]
        if not ids:
            raise InvalidInput("completionQuery.fromSelection.include must list at least one completion id")
        conditions = [Completion.use_case_id == use_case.id, Completion.id.in_(ids)]
    else:
        flt = query.from_filters.filters
        named = await get_use_case(session, principal, flt.use_case, "use_case:read")
        if named.id != use_case.id:
            raise InvalidInput("completionQuery.fromFilters.filters.useCase must be the dataset's use case")
        campaign = getattr(flt, "ab_campaign", None)
        campaign_id = await resolve_ab_campaign(session, campaign, "abCampaign", use_case.id) if campaign else None
        conditions = await completion_filter(session, use_case.id, flt, campaign_id)
        excluded = [_completion_id(v, "completionQuery.fromFilters.exclude") for v in query.from_filters.exclude or []]
        if excluded:
            conditions.append(Completion.id.not_in(excluded))
    metrics = [await get_key(session, m) for m in getattr(inp, "metrics", None) or []]
    if metrics and kind == "PROMPT":
        raise InvalidInput("metrics: a PROMPT dataset holds no completions to choose or score")
    plan = Plan(use_case=use_case, kind=kind, conditions=conditions, metrics=metrics)
    sample = getattr(inp, "sample_config", None)
    if sample is not None:
        plan.selection_type = str(_value(sample.selection_type))
        if plan.selection_type not in SELECTION_TYPES:
            raise InvalidInput(f"sampleConfig.selectionType must be one of {', '.join(SELECTION_TYPES)}")
        size = sample.sample_size
        if plan.selection_type == "ALL" and size is not None:
            raise InvalidInput("sampleConfig.sampleSize needs selectionType RANDOM or LAST (ALL takes every row)")
        if plan.selection_type != "ALL" and (size is None or size < 1):
            raise InvalidInput(f"sampleConfig.sampleSize must be 1 or more with selectionType {plan.selection_type}")
        plan.sample_size = size
    return plan


def _completion_id(value: Any, where: str) -> uuid.UUID:
    parsed = parse_uuid(value)
    if parsed is None:
        raise InvalidInput(f"{where}: {value!r} is not a completion id")
    return parsed


async def count_rows(session: AsyncSession, plan: Plan) -> int:
    return int((await session.execute(select(func.count()).select_from(plan.query().subquery()))).scalar_one())


def _row(kind: str, record: Any, feedback: dict[str, float] | None = None) -> dict[str, Any] | None:
    """A dataset row of one selected record, or None when it cannot make a valid row."""
    if kind == "PREFERENCE":
        comparison_id, messages, chosen, rejected, labels, metric = record
        if not chosen.strip() or not rejected.strip() or chosen == rejected:
            return None
        row = {
            "id": str(comparison_id),
            "messages": dataset_messages(messages),
            "chosen": chosen,
            "rejected": rejected,
            "metadata": {"metric": metric},
        }
    else:
        completion_id, messages, completion, labels = record
        row = {"id": str(completion_id), "messages": dataset_messages(messages)}
        if kind != "PROMPT":
            row["completion"] = completion
        if kind == "PROMPT_COMPLETION_FEEDBACK":
            if not feedback:
                return None
            row["feedback"] = feedback
    if not row["messages"]:
        return None
    if labels:
        row["labels"] = {str(k): str(v) for k, v in labels.items()}
    return row


async def stream_rows(engine: AsyncEngine, plan: Plan, limit: int | None = None) -> AsyncIterator[list[dict[str, Any]]]:
    """The plan's rows, a partition at a time, read through a streaming cursor of its own connection."""
    query = plan.query()
    if limit is not None:
        query = query.limit(min(limit, plan.sample_size or limit))
    async with engine.connect() as conn, engine.connect() as lookups:
        result = await conn.stream(query.execution_options(yield_per=PARTITION_ROWS))
        async for partition in result.partitions(PARTITION_ROWS):
            feedback = None
            if plan.kind == "PROMPT_COMPLETION_FEEDBACK":
                feedback = await feedback_values(lookups, [r[0] for r in partition], [m.id for m in plan.metrics])
            rows = [_row(plan.kind, r, feedback.get(r[0]) if feedback is not None else None) for r in partition]
            yield [r for r in rows if r is not None]


async def preview(engine: AsyncEngine, session: AsyncSession, plan: Plan) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    async for part in stream_rows(engine, plan, limit=PREVIEW_ROWS * 2):
        rows.extend(part)
    return {"kind": plan.kind, "count": await count_rows(session, plan), "rows": rows[:PREVIEW_ROWS]}


async def write_file(
    engine: AsyncEngine, plan: Plan, out: Path, progress: Callable[[int], Any] | None = None
) -> Summary:
    """Write the plan's rows to ``out`` as JSONL, each checked by the upload validator."""
    validator = Validator()
    written = 0
    with open(out, "wb") as sink:
        async for rows in stream_rows(engine, plan):
            lines = b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows)
            for line in lines.splitlines():
                validator.feed(line)
            sink.write(lines)
            written += len(rows)
            if progress is not None:
                await progress(written)
    try:
        return validator.finish()
    except RowError as exc:  # no rows at all
        raise InvalidInput(f"the filters select no usable rows for a {plan.kind} dataset ({exc.reason})") from None


async def create(
    session: AsyncSession,
    principal: Principal,
    engine: AsyncEngine,
    store: FileStore,
    builds: DatasetBuilds,
    inp: Any,
    *,
    inline_rows: int,
) -> Dataset:
    """Create the dataset of ``inp``: written now when it has at most ``inline_rows`` rows, else PROCESSING."""
    if not inp.name or not inp.name.strip():
        raise InvalidInput("a dataset needs a name")
    plan = await plan_from_input(session, principal, inp)
    await check_can_create(session, principal, inp.use_case, inp.key, inp.name)
    key = validate_key(inp.key or inp.name, "dataset key")
    total = await count_rows(session, plan)
    if total == 0:
        raise InvalidInput(f"the filters select no rows for a {plan.kind} dataset")
    dataset_id = new_id()
    relative = f"datasets/{dataset_id}.jsonl"
    dataset = Dataset(
        id=dataset_id,
        use_case_id=plan.use_case.id,
        key=key,
        name=inp.name,
        kind=plan.kind,
        source="FILTERED",
        records=0,
        size_bytes=0,
        path=relative,
        feedback_keys={},
        created_by_id=principal.user_id,
        status="PROCESSING",
        total_lines=total,
        processed_lines=0,
    )
    if total > inline_rows:
        session.add(dataset)
        await session.flush()
        # Written in the background once the PROCESSING row is committed (never if the request fails).
        after_commit(session, lambda: builds.launch(dataset_id, plan))
        return dataset
    temp = store.temp_path(".jsonl")
    try:
        summary = await write_file(engine, plan, temp)
        _finish(dataset, summary, temp.stat().st_size)
        store.place(temp, relative)
    finally:
        temp.unlink(missing_ok=True)
    await add_stored(session, store, dataset)
    return dataset


def _finish(dataset: Dataset, summary: Summary, size: int) -> None:
    dataset.status = "READY"
    dataset.records = summary.records
    dataset.processed_lines = summary.records
    dataset.size_bytes = size
    dataset.feedback_keys = dict(summary.feedback_keys)


class DatasetBuilds:
    """Writes large datasets from filters in the background (a service of the app). A dataset left PROCESSING
    by a server that stopped is marked FAILED when the next one starts: its plan lived only in memory."""

    # Seconds between two progress updates of a dataset being written.
    PROGRESS_EVERY_S = 1.0

    def __init__(self, engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], store: FileStore) -> None:
        self.engine = engine
        self.sessionmaker = sessionmaker
        self.store = store
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}

    async def start(self) -> None:
        async with self.sessionmaker() as session:
            await session.execute(
                update(Dataset)
                .where(Dataset.status == "PROCESSING")
                .values(status="FAILED", error="the server stopped while the dataset was being written")
            )
            await session.commit()

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def launch(self, dataset_id: uuid.UUID, plan: Plan) -> None:
        task = asyncio.get_running_loop().create_task(self._build(dataset_id, plan), name=f"dataset-{dataset_id}")
        self._tasks[dataset_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(dataset_id, None))

    async def wait(self, dataset_id: uuid.UUID) -> None:
        """Until the build of ``dataset_id`` (if any) has ended (tests, shutdown)."""
        task = self._tasks.get(dataset_id)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def _set(self, dataset_id: uuid.UUID, **values: Any) -> None:
        async with self.sessionmaker() as session:
            await session.execute(update(Dataset).where(Dataset.id == dataset_id).values(**values))
            await session.commit()

    async def _build(self, dataset_id: uuid.UUID, plan: Plan) -> None:
        temp = self.store.temp_path(".jsonl")
        last = time.monotonic()

        async def progress(written: int) -> None:
            nonlocal last
            if time.monotonic() - last >= self.PROGRESS_EVERY_S:
                last = time.monotonic()
                await self._set(dataset_id, processed_lines=written)

        try:
            summary = await write_file(self.engine, plan, temp, progress)
            async with self.sessionmaker() as session:
                dataset = await session.get(Dataset, dataset_id)
                if dataset is None:  # deleted while it was written
                    return
                _finish(dataset, summary, temp.stat().st_size)
                self.store.place(temp, dataset.path)
                await session.commit()
        except asyncio.CancelledError:
            await asyncio.shield(self._set(dataset_id, status="FAILED", error="the server stopped while writing it"))
            raise
        except Exception as exc:  # noqa: BLE001 - the dataset says why it failed
            log.exception("dataset %s from filters failed", dataset_id)
            reason = str(getattr(exc, "message", None) or exc) or type(exc).__name__
            await self._set(dataset_id, status="FAILED", error=reason[:2000])
        finally:
            temp.unlink(missing_ok=True)
