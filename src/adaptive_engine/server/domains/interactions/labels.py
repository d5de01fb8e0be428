"""Labels as rows: how a label filter finds its completions through an index instead of reading every
completion's JSON.

``Completion.labels`` is the record of a completion's labels; ``completion_labels`` holds one row per label
(use case, key, value, completion), written in the same transaction as every write of labels: the ingest path
(``ingest.insert_rows``) and curation (:func:`replace`). Key and value are stored as 128-bit digests, so a label
of any length fits the index on both SQLite and PostgreSQL. A filter on labels becomes ``id IN (the rows of the
index that match)``: a read of the matching entries only, whatever the size of the use case.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.db.models import Completion, CompletionLabel


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _text(value: Any) -> str | None:
    """A stored label value as the filters compare it: strings as they are (the API accepts only strings), anything
    an older writer may have stored as its JSON text, and null as no label at all."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def label_rows(completion_id: uuid.UUID, use_case_id: uuid.UUID, labels: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The ``completion_labels`` rows of one completion's labels."""
    rows = []
    for key, value in (labels or {}).items():
        text = _text(value)
        if text is not None:
            rows.append(
                {
                    "completion_id": completion_id,
                    "use_case_id": use_case_id,
                    "key_digest": digest(str(key)),
                    "value_digest": digest(text),
                }
            )
    return rows


async def insert_for(session: AsyncSession, completions: Iterable[dict[str, Any]]) -> None:
    """Index the labels of new ``completions`` rows (column dicts), in the session's transaction."""
    rows = [r for c in completions for r in label_rows(c["id"], c["use_case_id"], c.get("labels"))]
    if rows:
        await session.execute(insert(CompletionLabel.__table__), rows)


async def replace(session: AsyncSession, completion: Completion, labels: dict[str, str]) -> None:
    """Set a completion's labels: the JSON record and its index rows, in the session's transaction."""
    completion.labels = labels
    await session.execute(delete(CompletionLabel).where(CompletionLabel.completion_id == completion.id))
    rows = label_rows(completion.id, completion.use_case_id, labels)
    if rows:
        await session.execute(insert(CompletionLabel.__table__), rows)


def _matching(use_case_id: uuid.UUID, key: str, values: list[str] | None) -> Any:
    query = select(CompletionLabel.completion_id).where(
        CompletionLabel.use_case_id == use_case_id, CompletionLabel.key_digest == digest(key)
    )
    if values is not None:
        query = query.where(CompletionLabel.value_digest.in_([digest(v) for v in values]))
    return query


def has_label(use_case_id: uuid.UUID, key: str, values: list[str] | None = None) -> Any:
    """Completions of the use case that have label ``key`` (with one of ``values`` when given)."""
    return Completion.id.in_(_matching(use_case_id, key, values))


def lacks_label(use_case_id: uuid.UUID, key: str, values: list[str]) -> Any:
    """Completions of the use case whose label ``key`` is none of ``values`` (or that have no such label)."""
    return Completion.id.not_in(_matching(use_case_id, key, values))
