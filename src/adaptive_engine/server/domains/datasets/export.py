"""Exports: interactions and datasets as JSONL or CSV, streamed a partition at a time (never whole in memory).

An export of interactions takes the ``ListCompletionsFilterInput`` of ``completions`` as JSON (its wire names) in
the ``filter`` query parameter, so the links ``completionDownloadUrl`` / ``completionAsDatasetDownloadUrl`` give
select exactly what the same filter lists.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from sqlalchemy import BigInteger, Text, case, cast, extract, func, literal_column, null, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.models import Completion, Feedback, Metric
from adaptive_engine.server.domains.interactions.repository import completion_filter
from adaptive_engine.server.domains.interactions.service import resolve_ab_campaign
from adaptive_engine.server.domains.use_cases.service import get_use_case
from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.timestamps import epoch, parse_datetime

FORMATS = ("jsonl", "csv")
MEDIA_TYPES = {"jsonl": "application/jsonl", "csv": "text/csv"}
PARTITION_ROWS = 1000
# Rows fetched per round trip and per written chunk: large chunks keep the per-write cost off each row.
STREAM_ROWS = 5000
INTERACTION_COLUMNS = (
    "id",
    "created_at",
    "model",
    "source",
    "session_id",
    "user_id",
    "prompt_hash",
    "messages",
    "completion",
    "labels",
    "feedback",
)
DATASET_COLUMNS = ("id", "messages", "prompt", "completion", "chosen", "rejected", "feedback", "labels", "metadata")


def check_format(value: str) -> str:
    fmt = value.lower()
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, not {value!r}")
    return fmt


def download_link(path: str, **params: str) -> str:
    """A link to a download route of this API (relative to the server's address)."""
    return f"/api/v1{path}?{urlencode(params)}"


# ----- the filter as JSON


_RESERVED = {"from": "from_", "in": "in_", "and": "and_", "or": "or_", "not": "not_"}
_FIELDS = {
    "use_case",
    "models",
    "timerange",
    "session_id",
    "user_id",
    "feedbacks",
    "comparisons",
    "labels",
    "prompt_hash",
    "completion_id",
    "source",
    "completion",
    "prompt",
    "advanced_filter",
    "ab_campaign",
}


class _Fields:
    """A JSON object read like the GraphQL input it stands for: snake_case attributes, None when absent."""

    def __init__(self, values: dict[str, Any]) -> None:
        self.__dict__.update(values)

    def __getattr__(self, name: str) -> Any:
        return None


def _snake(name: str) -> str:
    return _RESERVED.get(name) or re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _fields(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return [_fields(v, where) for v in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for name, item in value.items():
        attr = _snake(name)
        if attr in ("from_", "to"):
            try:
                out[attr] = parse_datetime(item)
            except (TypeError, ValueError) as exc:
                raise InvalidInput(f"{where}.timerange.{name}: {exc}") from None
        else:
            out[attr] = _fields(item, f"{where}.{name}")
    return _Fields(out)


def filter_from_json(text: str | None, use_case: str) -> Any:
    """``text``: a ListCompletionsFilterInput as JSON (useCase may be left out: the route's use case applies)."""
    try:
        raw = json.loads(text) if text else {}
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"filter is not valid JSON: {exc.msg}") from None
    if not isinstance(raw, dict):
        raise InvalidInput("filter must be a JSON object (a ListCompletionsFilterInput)")
    unknown = sorted(k for k in raw if _snake(k) not in _FIELDS)
    if unknown:
        raise InvalidInput(f"filter: unknown field(s) {', '.join(unknown)}")
    named = raw.get("useCase")
    if named is not None and named != use_case:
        raise InvalidInput("filter.useCase must be the use_case of the request")
    raw["useCase"] = use_case
    return _fields(raw, "filter")


def filter_to_json(flt: Any) -> str:
    """The wire JSON of a GraphQL ``ListCompletionsFilterInput`` (for a download link)."""

    def wire(value: Any) -> Any:
        if isinstance(value, list):
            return [wire(v) for v in value]
        if hasattr(value, "value") and not hasattr(value, "__dataclass_fields__"):
            return value.value  # an enum
        if hasattr(value, "__dataclass_fields__"):
            out = {}
            for name in value.__dataclass_fields__:
                item = getattr(value, name)
                if item is not None:
                    wire_name = next((k for k, v in _RESERVED.items() if v == name), None) or re.sub(
                        r"_([a-z])", lambda m: m.group(1).upper(), name
                    )
                    out[wire_name] = wire(item)
            return out
        if hasattr(value, "isoformat"):
            return epoch(value)
        return str(value) if not isinstance(value, (str, int, float, bool)) else value

    return json.dumps(wire(flt), separators=(",", ":"))


# ----- interactions


async def interaction_conditions(session: AsyncSession, principal: Principal, use_case: str, flt: Any) -> list[Any]:
    target = await get_use_case(session, principal, use_case, "use_case:read")
    campaign = getattr(flt, "ab_campaign", None)
    campaign_id = await resolve_ab_campaign(session, campaign, "abCampaign", target.id) if campaign else None
    return await completion_filter(session, target.id, flt, campaign_id)


async def feedback_values(
    conn: Any, ids: list[Any], metric_ids: list[Any] | None = None
) -> dict[Any, dict[str, float]]:
    """The latest value of each key (of ``metric_ids`` when given) on each completion of ``ids``."""
    out: dict[Any, dict[str, float]] = {}
    query = (
        select(Feedback.completion_id, Metric.key, Feedback.value)
        .join(Metric, Metric.id == Feedback.metric_id)
        .where(Feedback.completion_id.in_(ids))
        .order_by(Feedback.created_at, Feedback.id)
    )
    if metric_ids:
        query = query.where(Feedback.metric_id.in_(metric_ids))
    for completion_id, key, value in await conn.execute(query):
        out.setdefault(completion_id, {})[key] = value
    return out


def _epoch_seconds(dialect: str) -> Any:
    """created_at as whole epoch seconds computed by the database (what ``epoch`` gives), not a datetime per row."""
    if dialect == "sqlite":
        return cast(func.strftime("%s", Completion.created_at), BigInteger).label("created_at")
    return cast(func.floor(extract("epoch", Completion.created_at)), BigInteger).label("created_at")


def _uuid_text(text: str | None) -> str | None:
    """A UUID column read as text (skipping a UUID object per row) in its canonical form: SQLite keeps
    32 hex digits, PostgreSQL already writes the dashes."""
    if text is None or len(text) != 32:
        return text
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def _loads(text: str | bytes | None) -> Any:
    """A stored JSON column's text: orjson, or the standard decoder for what orjson refuses (NaN)."""
    if text is None:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


async def interaction_rows(
    engine: AsyncEngine, conditions: list[Any], as_dataset: bool
) -> AsyncIterator[list[dict[str, Any]]]:
    """The selected completions, oldest first, a partition at a time; ``as_dataset``: as PROMPT_COMPLETION rows."""
    # Plain rows of the columns written, not ORM objects: an export reads many. The JSON columns come as their
    # text and are decoded here with orjson (the driver's decoder is the standard library's, several times slower).
    columns = (
        cast(Completion.id, Text).label("id"),
        _epoch_seconds(engine.dialect.name),
        Completion.model_key,
        Completion.source,
        cast(Completion.session_id, Text).label("session_id"),
        Completion.user_ref,
        Completion.prompt_hash,
        cast(Completion.messages, Text).label("messages"),
        Completion.completion,
        cast(Completion.labels, Text).label("labels"),
    )
    if as_dataset:
        query = select(*columns).where(*conditions).order_by(Completion.created_at, Completion.id)
        async with engine.connect() as conn:
            result = await conn.stream(query.execution_options(yield_per=STREAM_ROWS))
            async for partition in result.partitions(STREAM_ROWS):
                yield [_dataset_row(r) for r in partition if r.completion and r.messages and r.messages != "[]"]
        return
    # Each completion's feedback joined in the same stream (a row per value, consecutive): no query per partition.
    # An alias, so that the filter's own feedback conditions (EXISTS on the table) are not tied to this join.
    given = aliased(Feedback)
    query = (
        select(*columns, Metric.key.label("feedback_key"), given.value.label("feedback_value"))
        .select_from(Completion)
        .outerjoin(given, given.completion_id == Completion.id)
        .outerjoin(Metric, Metric.id == given.metric_id)
        .where(*conditions)
        .order_by(Completion.created_at, Completion.id, given.created_at, given.id)
    )
    current: Any = None
    feedback: dict[str, float] = {}
    async with engine.connect() as conn:
        result = await conn.stream(query.execution_options(yield_per=STREAM_ROWS))
        async for partition in result.partitions(STREAM_ROWS):
            done = []
            # Positions rather than names: this loop runs once per row and feedback value.
            for r in partition:
                if current is None or r[0] != current[0]:
                    if current is not None:
                        done.append(_interaction_row(current, feedback))
                    current, feedback = r, {}
                if r[10] is not None:  # feedback_key
                    feedback[r[10]] = r[11]  # the latest value of a key wins
            if done:
                yield done
    if current is not None:
        yield [_interaction_row(current, feedback)]


def _id_text(column: Any, dialect: str) -> Any:
    """A UUID column as its canonical text, in SQL (SQLite keeps 32 hex digits, PostgreSQL writes the dashes)."""
    text = cast(column, Text)
    if dialect != "sqlite":
        return text
    parts = [func.substr(text, start, length) for start, length in ((1, 8), (9, 4), (13, 4), (17, 4), (21, 12))]
    return (
        parts[0]
        .concat("-")
        .concat(parts[1])
        .concat("-")
        .concat(parts[2])
        .concat("-")
        .concat(parts[3])
        .concat("-")
        .concat(parts[4])
    )


def _stored_json(column: Any, empty: str, dialect: str) -> Any:
    """A JSON column as a JSON value of the line (``empty`` for NULL or JSON null, as ``_loads(...) or empty``).
    SQLite may hold text its json() refuses (NaN, written by Python's encoder): NULL then, the row is redone."""
    text = func.coalesce(func.nullif(cast(column, Text), "null"), empty)
    if dialect == "sqlite":
        return case((func.json_valid(text) == 1, func.json(text)), else_=null())
    return cast(text, postgresql.JSON)


def _interaction_line(dialect: str) -> Any:
    """A completion's JSONL object without its feedback, built by the database: the export then only joins text
    (building and encoding a dict per row in Python cost as much CPU as reading the row)."""
    values = {
        "id": _id_text(Completion.id, dialect),
        "created_at": _epoch_seconds(dialect).element,
        "model": Completion.model_key,
        "source": Completion.source,
        "session_id": _id_text(Completion.session_id, dialect),
        "user_id": Completion.user_ref,
        "prompt_hash": Completion.prompt_hash,
        "messages": _stored_json(Completion.messages, "[]", dialect),
        "completion": Completion.completion,
        "labels": _stored_json(Completion.labels, "{}", dialect),
    }
    # Keys as SQL literals: PostgreSQL cannot type a bound parameter given to json_build_object.
    arguments: list[Any] = []
    for key, value in values.items():
        arguments += (literal_column(f"'{key}'"), value)
    if dialect == "sqlite":
        return func.json_object(*arguments)
    return cast(func.json_build_object(*arguments), Text)


def _redone_on_sqlite(dialect: str) -> tuple[Any, Any]:
    """The stored JSON of a row whose line SQLite could not build (NULL for every other row)."""
    if dialect != "sqlite":
        return null(), null()
    invalid = (func.json_valid(Completion.messages) == 0) | (func.json_valid(Completion.labels) == 0)
    as_text = (cast(Completion.messages, Text), cast(Completion.labels, Text))  # decoded with _loads, as the rows
    return case((invalid, as_text[0]), else_=null()), case((invalid, as_text[1]), else_=null())


_NO_FEEDBACK = ',"feedback":{}}\n'


def _with_feedback(line: str, messages: Any, labels: Any, feedback: dict[str, float]) -> str:
    if messages is not None or labels is not None:  # SQLite could not read the stored JSON: as _interaction_row
        row = orjson.loads(line)
        row["messages"], row["labels"] = _loads(messages) or [], _loads(labels) or {}
        line = orjson.dumps(row).decode()
    if not feedback:
        return line[:-1] + _NO_FEEDBACK
    return f'{line[:-1]},"feedback":{orjson.dumps(feedback).decode()}}}\n'


async def interaction_lines(engine: AsyncEngine, conditions: list[Any]) -> AsyncIterator[bytes]:
    """The export of the selected completions as JSONL (the rows of ``interaction_rows``), a chunk at a time."""
    dialect = engine.dialect.name
    given = aliased(Feedback)
    query = (
        select(_interaction_line(dialect), *_redone_on_sqlite(dialect), Metric.key, given.value)
        .select_from(Completion)
        .outerjoin(given, given.completion_id == Completion.id)
        .outerjoin(Metric, Metric.id == given.metric_id)
        .where(*conditions)
        .order_by(Completion.created_at, Completion.id, given.created_at, given.id)
    )
    current: Any = None
    redo_messages = redo_labels = None
    feedback: dict[str, float] = {}
    async with engine.connect() as conn:
        result = await conn.stream(query.execution_options(yield_per=STREAM_ROWS))
        async for partition in result.partitions(STREAM_ROWS):
            done = []
            # A line per completion (it holds the id), repeated on each of its feedback values.
            for line, messages, labels, key, value in partition:
                if line != current:
                    if current is not None:
                        done.append(_with_feedback(current, redo_messages, redo_labels, feedback))
                    current, redo_messages, redo_labels, feedback = line, messages, labels, {}
                if key is not None:
                    feedback[key] = value  # the latest value of a key wins
            if done:
                yield "".join(done).encode()
    if current is not None:
        yield _with_feedback(current, redo_messages, redo_labels, feedback).encode()


def interactions(engine: AsyncEngine, conditions: list[Any], as_dataset: bool, fmt: str) -> AsyncIterator[bytes]:
    """The export of the selected completions in ``fmt``, a chunk at a time."""
    if fmt == "jsonl" and not as_dataset:
        return interaction_lines(engine, conditions)
    columns = ("id", "messages", "completion", "labels") if as_dataset else INTERACTION_COLUMNS
    return encode(interaction_rows(engine, conditions, as_dataset), fmt, columns)


def dataset_messages(stored: list[dict[str, Any]] | None) -> list[dict[str, str]]:
    """A completion's prompt as a dataset row's ``messages`` (role and text only)."""
    return [{"role": str(m.get("role", "")), "content": str(m.get("content") or "")} for m in stored or []]


def _dataset_row(r: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": _uuid_text(r.id),
        "messages": dataset_messages(_loads(r.messages)),
        "completion": r.completion,
    }
    labels = _loads(r.labels)
    if labels:
        row["labels"] = {str(k): str(v) for k, v in labels.items()}
    return row


def _interaction_row(r: Any, feedback: dict[str, float]) -> dict[str, Any]:
    row_id, created_at, model, source, session_id, user, prompt_hash, messages, completion, labels = r[:10]
    return {
        "id": _uuid_text(row_id),
        "created_at": created_at,
        "model": model,
        "source": source,
        "session_id": _uuid_text(session_id),
        "user_id": user,
        "prompt_hash": prompt_hash,
        "messages": _loads(messages) or [],
        "completion": completion,
        "labels": _loads(labels) or {},
        "feedback": feedback,
    }


# ----- encoders


async def encode(
    partitions: AsyncIterator[list[dict[str, Any]]], fmt: str, columns: Iterable[str]
) -> AsyncIterator[bytes]:
    """JSONL lines, or CSV with ``columns`` (objects and lists in a cell as JSON), a partition per chunk."""
    columns = list(columns)
    if fmt == "csv":
        yield _csv_lines([columns])
    async for rows in partitions:
        if fmt == "jsonl":
            yield b"".join([orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in rows])
        else:
            yield _csv_lines([[_cell(r.get(c)) for c in columns] for r in rows])


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return value


def _csv_lines(rows: list[list[Any]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().encode()


async def file_rows(path: Path) -> AsyncIterator[list[dict[str, Any]]]:
    """A dataset file's rows, a partition at a time."""
    with open(path, "rb") as lines:
        batch: list[dict[str, Any]] = []
        for line in lines:
            if line.strip():
                batch.append(_loads(line))
            if len(batch) >= PARTITION_ROWS:
                yield batch
                batch = []
        if batch:
            yield batch
