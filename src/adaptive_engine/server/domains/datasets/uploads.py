"""Chunked uploads (files over the GraphQL upload size): parts, then one dataset from them."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.lookup import parse_uuid
from adaptive_engine.server.db.models import Dataset, UploadSession
from adaptive_engine.server.db.session import after_commit, rowcount
from adaptive_engine.server.domains.datasets import service
from adaptive_engine.server.domains.use_cases.service import get_use_case
from adaptive_engine.server.errors import (
    Conflict,
    InvalidInput,
    NotFound,
)
from adaptive_engine.server.files import copy_chunks
from adaptive_engine.server.jobs.storage import FileStore
from adaptive_engine.server.timestamps import utcnow

MAX_PARTS = 10_000
FOLDER = "uploads"


def _folder(upload: UploadSession) -> str:
    return f"{FOLDER}/{upload.id}"


async def init_upload(
    session: AsyncSession,
    principal: Principal,
    *,
    content_type: str | None,
    metadata: dict[str, Any] | None,
    total_parts: int,
) -> UploadSession:
    if not isinstance(total_parts, int) or not 1 <= total_parts <= MAX_PARTS:
        raise InvalidInput(f"total_parts_count must be between 1 and {MAX_PARTS}")
    upload = UploadSession(
        user_id=principal.user_id, content_type=content_type, upload_metadata=metadata or {}, total_parts=total_parts
    )
    session.add(upload)
    await session.flush()
    return upload


async def _open_session(session: AsyncSession, principal: Principal, session_id: str) -> UploadSession:
    as_uuid = parse_uuid(session_id)
    upload = await session.get(UploadSession, as_uuid) if as_uuid else None
    if upload is None or upload.user_id != principal.user_id:
        # Idle sessions are removed by housekeeping (remove_idle), so a missing one may have expired.
        raise NotFound(f"upload session '{session_id}' does not exist or has expired")
    if upload.status != "OPEN":
        raise Conflict(f"upload session '{session_id}' is {upload.status.lower()}, not open")
    return upload


async def _write_if_open(session: AsyncSession, upload: UploadSession, **values: Any) -> None:
    """Write ``values`` on the upload only while it is still open: housekeeping may have removed it since it
    was read (the part written meanwhile is then a stray folder, removed on its next pass)."""
    values["updated_at"] = utcnow()
    result = await session.execute(
        update(UploadSession)
        .where(UploadSession.id == upload.id, UploadSession.status == "OPEN")
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if rowcount(result) != 1:
        raise NotFound(f"upload session '{upload.id}' does not exist or has expired")
    for name, value in values.items():
        set_committed_value(upload, name, value)


async def put_part(
    session: AsyncSession,
    principal: Principal,
    store: FileStore,
    *,
    session_id: str,
    part_number: int,
    chunks: AsyncIterator[bytes],
    max_bytes: int,
) -> int:
    upload = await _open_session(session, principal, session_id)
    if not 1 <= part_number <= upload.total_parts:
        raise InvalidInput(f"part_number must be between 1 and {upload.total_parts}")
    target = store.path(f"{_folder(upload)}/{part_number:05d}")
    target.parent.mkdir(parents=True, exist_ok=True)
    previous = target.stat().st_size if target.exists() else 0
    budget = max_bytes - (upload.received_bytes - previous)
    temp = store.temp_path()
    try:
        written = await copy_chunks(chunks, temp, budget, f"the upload is larger than the limit of {max_bytes} bytes")
        store.place(temp, f"{_folder(upload)}/{part_number:05d}")
    finally:
        temp.unlink(missing_ok=True)
    await _write_if_open(session, upload, received_bytes=upload.received_bytes - previous + written)
    return written


async def abort_upload(session: AsyncSession, principal: Principal, store: FileStore, session_id: str) -> None:
    upload = await _open_session(session, principal, session_id)
    await _write_if_open(session, upload, status="ABORTED")
    folder = _folder(upload)
    after_commit(session, lambda: store.delete(folder))


async def create_dataset_from_upload(
    session: AsyncSession,
    principal: Principal,
    store: FileStore,
    *,
    session_id: str,
    use_case: str,
    name: str,
    key: str | None,
    source: str | None,
    max_bytes: int,
) -> tuple[UploadSession, Dataset]:
    upload = await _open_session(session, principal, session_id)
    folder = store.path(_folder(upload))
    missing = [n for n in range(1, upload.total_parts + 1) if not (folder / f"{n:05d}").is_file()]
    if missing:
        raise InvalidInput(
            f"upload is incomplete: part(s) {', '.join(map(str, missing[:10]))} of {upload.total_parts} missing"
        )
    temp = store.temp_path(".jsonl")
    with open(temp, "wb") as out:
        for n in range(1, upload.total_parts + 1):
            with open(folder / f"{n:05d}", "rb") as part:
                shutil.copyfileobj(part, out, 1 << 20)
    dataset = await service.create_from_file(
        session, principal, store, temp, use_case=use_case, name=name, key=key, source=source, max_bytes=max_bytes
    )
    try:
        await _write_if_open(session, upload, status="DONE", dataset_id=dataset.id, use_case_id=dataset.use_case_id)
    except NotFound:
        store.delete(dataset.path)  # the transaction rolls back: its dataset row goes, so must its file
        raise
    relative = _folder(upload)
    after_commit(session, lambda: store.delete(relative))
    return upload, dataset


async def processing_status(
    session: AsyncSession, principal: Principal, *, use_case: str, dataset_id: str
) -> tuple[uuid.UUID, UploadSession | None]:
    target = await get_use_case(session, principal, use_case)
    dataset = await service.find_in_use_case(session, target, dataset_id)
    upload = (
        await session.execute(select(UploadSession).where(UploadSession.dataset_id == dataset.id))
    ).scalar_one_or_none()
    return dataset.id, upload


async def remove_idle(session: AsyncSession, store: FileStore, idle_since: datetime, limit: int) -> int:
    """Remove up to ``limit`` upload sessions that never became a dataset (open or aborted) and saw no
    activity since ``idle_since``; their parts are deleted once this commits. Returns how many."""
    last_activity = func.coalesce(UploadSession.updated_at, UploadSession.created_at)
    idle = (UploadSession.status != "DONE") & UploadSession.dataset_id.is_(None) & (last_activity < idle_since)
    # correlate(None): the subquery reads the table itself, it is not a condition on the deleted row.
    chosen = select(UploadSession.id).where(idle).order_by(last_activity).limit(limit).correlate(None)
    # The condition again on the row deleted: a part that landed since the subquery ran keeps its session.
    removed = list(
        (
            await session.execute(
                delete(UploadSession)
                .where(UploadSession.id.in_(chosen), idle)
                .returning(UploadSession.id)
                .execution_options(synchronize_session=False)
            )
        ).scalars()
    )

    def delete_parts() -> None:
        for upload_id in removed:
            store.delete(f"{FOLDER}/{upload_id}")

    after_commit(session, delete_parts)
    return len(removed)


async def remove_stray_parts(session: AsyncSession, store: FileStore, limit: int) -> int:
    """Delete up to ``limit`` part folders whose session is not open any more (a crash between a session's
    end and the deletion of its parts, or a part written while its session expired)."""
    root = store.path(FOLDER)
    if not root.is_dir():
        return 0
    names = sorted(entry.name for entry in root.iterdir() if entry.is_dir())
    stray: list[str] = []
    for start in range(0, len(names), 500):
        batch = names[start : start + 500]
        ids = [i for i in map(parse_uuid, batch) if i is not None]
        open_ids = set(
            (
                await session.execute(
                    select(UploadSession.id).where(UploadSession.id.in_(ids), UploadSession.status == "OPEN")
                )
            ).scalars()
        )
        stray += [name for name in batch if parse_uuid(name) not in open_ids]
        if len(stray) >= limit:
            break
    for name in stray[:limit]:
        store.delete(f"{FOLDER}/{name}")
    return min(len(stray), limit)
