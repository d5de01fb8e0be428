"""What the datasets domain hands its readers: plain values built from the rows in one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from adaptive_engine.server.db.models import Dataset, UploadSession


@dataclass(frozen=True, slots=True)
class DatasetRecord:
    id: uuid.UUID
    use_case_id: uuid.UUID
    key: str
    name: str
    kind: str
    source: str
    status: str
    error: str | None
    records: int
    size_bytes: int
    processed_lines: int
    total_lines: int
    # The file, relative to the file store.
    path: str
    # How many rows carry each feedback key: {key: count}.
    feedback_keys: dict[str, int]
    created_at: datetime

    @classmethod
    def of(cls, dataset: Dataset) -> DatasetRecord:
        return cls(
            id=dataset.id,
            use_case_id=dataset.use_case_id,
            key=dataset.key,
            name=dataset.name,
            kind=dataset.kind,
            source=dataset.source,
            status=dataset.status,
            error=dataset.error,
            records=dataset.records,
            size_bytes=dataset.size_bytes,
            processed_lines=dataset.processed_lines,
            total_lines=dataset.total_lines,
            path=dataset.path,
            feedback_keys=dict(dataset.feedback_keys or {}),
            created_at=dataset.created_at,
        )


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """A multipart upload session, as far as its dataset's processing goes."""

    status: str
    total_parts: int
    error: str | None

    @classmethod
    def of(cls, upload: UploadSession) -> UploadRecord:
        return cls(status=upload.status, total_parts=upload.total_parts, error=upload.error)
