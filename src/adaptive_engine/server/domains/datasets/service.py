"""Datasets: JSONL files of a use case, validated whole before anything is stored."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.base import new_id
from adaptive_engine.server.db.lookup import parse_uuid
from adaptive_engine.server.db.models import Dataset, UseCase
from adaptive_engine.server.db.session import after_commit
from adaptive_engine.server.domains.datasets.formats import RowError, Summary, Validator
from adaptive_engine.server.domains.datasets.records import DatasetRecord
from adaptive_engine.server.domains.use_cases.service import get_use_case, validate_key
from adaptive_engine.server.errors import AlreadyExists, InvalidInput, NotFound, PayloadTooLarge
from adaptive_engine.server.files import copy_chunks
from adaptive_engine.server.jobs.storage import FileStore

SOURCES = frozenset({"UPLOADED", "GENERATED", "FILTERED"})


def validate_file(path: Path, max_bytes: int) -> tuple[Summary, int]:
    """Check every line of a JSONL file (blocking: run it in a thread)."""
    size = path.stat().st_size
    if size > max_bytes:
        raise PayloadTooLarge(f"dataset is {size} bytes, over the limit of {max_bytes} bytes")
    validator = Validator()
    try:
        with open(path, "rb") as lines:
            for line in lines:
                validator.feed(line)
        return validator.finish(), size
    except RowError as exc:
        raise InvalidInput(f"invalid dataset: {exc}", details={"line": exc.line, "reason": exc.reason}) from None


async def write_stream(store: FileStore, chunks: AsyncIterator[bytes], max_bytes: int) -> Path:
    """Copy an upload to a temporary file, refusing it as soon as it passes ``max_bytes``."""
    temp = store.temp_path(".jsonl")
    await copy_chunks(chunks, temp, max_bytes, f"dataset is larger than the limit of {max_bytes} bytes")
    return temp


async def _check_new(
    session: AsyncSession, principal: Principal, use_case: str, key: str | None, name: str
) -> tuple[UseCase, str]:
    target = await get_use_case(session, principal, use_case, "dataset:write")
    key = validate_key(key or name, "dataset key")
    exists = await session.execute(select(Dataset.id).where(Dataset.use_case_id == target.id, Dataset.key == key))
    if exists.first():
        raise AlreadyExists(f"dataset '{key}' already exists in use case '{target.key}'")
    return target, key


async def check_can_create(
    session: AsyncSession, principal: Principal, use_case: str, key: str | None, name: str
) -> None:
    """Refuse early (before a byte is stored) what create_from_file would refuse for the caller or key."""
    await _check_new(session, principal, use_case, key, name)


async def create_from_file(
    session: AsyncSession,
    principal: Principal,
    store: FileStore,
    temp: Path,
    *,
    use_case: str,
    name: str,
    key: str | None,
    source: str | None,
    max_bytes: int,
) -> Dataset:
    """Validate the temporary file ``temp`` whole, then store it and create the dataset. Whatever
    fails, the temporary file is removed and nothing is created."""
    try:
        source = (source or "UPLOADED").upper()
        if source not in SOURCES:
            raise InvalidInput(f"dataset source must be one of {', '.join(sorted(SOURCES))}")
        if not name or not name.strip():
            raise InvalidInput("a dataset needs a name")
        target, key = await _check_new(session, principal, use_case, key, name)
        summary, size = await asyncio.to_thread(validate_file, temp, max_bytes)
        dataset_id = new_id()
        relative = f"datasets/{dataset_id}.jsonl"
        store.place(temp, relative)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    dataset = Dataset(
        id=dataset_id,
        use_case_id=target.id,
        key=key,
        name=name,
        kind=summary.kind,
        source=source,
        records=summary.records,
        size_bytes=size,
        path=relative,
        feedback_keys=dict(summary.feedback_keys),
        created_by_id=principal.user_id,
    )
    await add_stored(session, store, dataset)
    return dataset


async def add_stored(session: AsyncSession, store: FileStore, dataset: Dataset) -> None:
    """Add ``dataset``, whose file is already in the store: if its row cannot be written, the file is deleted,
    so a failed create leaves nothing behind."""
    session.add(dataset)
    try:
        await session.flush()
    except BaseException:
        store.delete(dataset.path)
        raise


async def find_in_use_case(session: AsyncSession, use_case: UseCase, id_or_key: str) -> Dataset:
    as_uuid = parse_uuid(id_or_key)
    query = select(Dataset).where(Dataset.use_case_id == use_case.id)
    query = query.where(Dataset.id == as_uuid) if as_uuid else query.where(Dataset.key == str(id_or_key))
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None and as_uuid:
        found = (
            await session.execute(
                select(Dataset).where(Dataset.use_case_id == use_case.id, Dataset.key == str(id_or_key))
            )
        ).scalar_one_or_none()
    if found is None:
        raise NotFound(f"dataset '{id_or_key}' not found in use case '{use_case.key}'")
    return found


async def get_dataset(session: AsyncSession, principal: Principal, id_or_key: str, use_case: str) -> Dataset:
    target = await get_use_case(session, principal, use_case)
    return await find_in_use_case(session, target, id_or_key)


async def list_datasets(session: AsyncSession, principal: Principal, use_case: str) -> list[Dataset]:
    target = await get_use_case(session, principal, use_case)
    rows = await session.execute(
        select(Dataset).where(Dataset.use_case_id == target.id).order_by(Dataset.created_at, Dataset.key)
    )
    return list(rows.scalars())


MAX_ROWS_READ = 100


def _rows_of(path: Path, offset: int, limit: int) -> list[dict[str, Any]]:
    rows = []
    with open(path, "rb") as lines:
        # Blank lines are not rows (the validator skips them too).
        numbered = (line for line in lines if line.strip())
        for line in itertools.islice(numbered, offset, offset + limit):
            rows.append(json.loads(line))
    return rows


async def read_rows(store: FileStore, dataset: DatasetRecord, offset: int, limit: int) -> list[dict[str, Any]]:
    """Rows ``offset`` to ``offset + limit`` of a dataset's file (a preview: read from the start each time)."""
    if offset < 0:
        raise InvalidInput("offset must be 0 or more")
    if not 1 <= limit <= MAX_ROWS_READ:
        raise InvalidInput(f"limit must be between 1 and {MAX_ROWS_READ}")
    path = store.path(dataset.path)
    if not path.is_file():
        raise NotFound(f"the file of dataset '{dataset.key}' is missing")
    return await asyncio.to_thread(_rows_of, path, offset, limit)


async def delete_dataset(
    session: AsyncSession, principal: Principal, store: FileStore, id_or_key: str, use_case: str
) -> bool:
    target = await get_use_case(session, principal, use_case, "dataset:write")
    dataset = await find_in_use_case(session, target, id_or_key)
    relative = dataset.path
    await session.delete(dataset)
    await session.flush()
    # The file goes only once the row is gone for good.
    after_commit(session, lambda: store.delete(relative))
    return True
