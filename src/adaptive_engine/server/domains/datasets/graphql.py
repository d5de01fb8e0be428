"""GraphQL of datasets: upload (multipart), chunked-upload completion, get, list, delete."""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator
from typing import Any

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import requires
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.domains.datasets import service, uploads
from adaptive_engine.server.domains.feedback.types import MetricType
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.loaders import row
from adaptive_engine.server.graphql.scalars import JSON, IdOrKey, Upload
from adaptive_engine.server.timestamps import epoch


@strawberry.enum(name="DatasetKind")
class DatasetKind(enum.Enum):
    PROMPT = "PROMPT"
    PROMPT_COMPLETION = "PROMPT_COMPLETION"
    PROMPT_COMPLETION_FEEDBACK = "PROMPT_COMPLETION_FEEDBACK"
    PREFERENCE = "PREFERENCE"


@strawberry.enum(name="DatasetSource")
class DatasetSource(enum.Enum):
    UPLOADED = "UPLOADED"
    GENERATED = "GENERATED"
    GENERATING = "GENERATING"
    FILTERED = "FILTERED"


@strawberry.enum(name="SessionStatus")
class SessionStatus(enum.Enum):
    PENDING = "PENDING"
    DONE = "DONE"
    ERROR = "ERROR"


@strawberry.type(name="DatasetMetricUsage")
class DatasetMetricUsage:
    feedback_count: int
    comparison_count: int
    metric: MetricType


@strawberry.type(name="Dataset")
class DatasetType:
    row: strawberry.Private[orm.Dataset]

    @strawberry.field
    def id(self) -> uuid.UUID:
        return self.row.id

    @strawberry.field
    def key(self) -> str | None:
        return self.row.key

    @strawberry.field
    def name(self) -> str:
        return self.row.name

    @strawberry.field
    def created_at(self) -> int:
        return epoch(self.row.created_at) or 0

    @strawberry.field
    def kind(self) -> DatasetKind:
        return DatasetKind(self.row.kind)

    @strawberry.field
    def source(self) -> DatasetSource:
        return DatasetSource(self.row.source)

    @strawberry.field
    def records(self) -> int | None:
        return self.row.records

    @strawberry.field
    def size_bytes(self) -> int:
        return self.row.size_bytes

    @strawberry.field(description="Rows of the file, in order, from offset (0-based); limit 1 to 100")
    async def rows(self, info: Info[Context, None], offset: int = 0, limit: int = 20) -> list[JSON]:
        return await service.read_rows(info.context.platform.file_store, self.row, offset, limit)

    @strawberry.field
    async def metrics_usage(self, info: Info[Context, None]) -> list[DatasetMetricUsage]:
        # The feedback keys found in the rows, by key (a key no longer registered is left out).
        counts = self.row.feedback_keys or {}
        metrics = await info.context.loaders.load_many(row(orm.Metric.key), sorted(counts))
        return [
            DatasetMetricUsage(feedback_count=int(counts[m.key]), comparison_count=0, metric=MetricType(row=m))
            for m in metrics
            if m is not None
        ]


@strawberry.type(name="DatasetUploadProcessingStatus")
class DatasetUploadProcessingStatusType:
    dataset_id: uuid.UUID
    status: SessionStatus
    total_parts: int
    processed_parts: int
    progress: float
    error: str | None


@strawberry.input(name="DatasetCreate")
class DatasetCreate:
    use_case: IdOrKey
    name: str
    key: str | None = None
    source: DatasetSource | None = None


@strawberry.input(name="DatasetCreateFromMultipartUpload")
class DatasetCreateFromMultipartUpload:
    use_case: IdOrKey
    name: str
    upload_session_id: str
    key: str | None = None
    source: DatasetSource | None = None


@strawberry.input(name="DatasetUploadProcessingStatusInput")
class DatasetUploadProcessingStatusInput:
    use_case: IdOrKey
    dataset_id: uuid.UUID


async def _read_upload(file: Any) -> AsyncIterator[bytes]:
    while chunk := await file.read(1 << 20):
        yield chunk


def _status(upload: orm.UploadSession | None, dataset_id: uuid.UUID) -> DatasetUploadProcessingStatusType:
    if upload is None:  # a dataset uploaded in one request: done from the start
        return DatasetUploadProcessingStatusType(
            dataset_id=dataset_id, status=SessionStatus.DONE, total_parts=1, processed_parts=1, progress=1.0, error=None
        )
    status = {"DONE": SessionStatus.DONE, "ERROR": SessionStatus.ERROR}.get(upload.status, SessionStatus.PENDING)
    done = upload.total_parts if status is SessionStatus.DONE else 0
    return DatasetUploadProcessingStatusType(
        dataset_id=dataset_id,
        status=status,
        total_parts=upload.total_parts,
        processed_parts=done,
        progress=done / upload.total_parts,
        error=upload.error,
    )


@strawberry.type
class DatasetQuery:
    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def dataset(self, info: Info[Context, None], id_or_key: IdOrKey, use_case: IdOrKey) -> DatasetType | None:
        ctx = info.context
        return DatasetType(row=await service.get_dataset(ctx.session, ctx.principal, id_or_key, use_case))

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def datasets(self, info: Info[Context, None], use_case: IdOrKey) -> list[DatasetType]:
        ctx = info.context
        return [DatasetType(row=d) for d in await service.list_datasets(ctx.session, ctx.principal, use_case)]

    @strawberry.field(extensions=[requires("use_case:read", use_case="input.use_case")])
    async def dataset_upload_processing_status(
        self, info: Info[Context, None], input: DatasetUploadProcessingStatusInput
    ) -> DatasetUploadProcessingStatusType:
        ctx = info.context
        dataset_id, upload = await uploads.processing_status(
            ctx.session, ctx.principal, use_case=input.use_case, dataset_id=str(input.dataset_id)
        )
        return _status(upload, dataset_id)


@strawberry.type
class DatasetMutation:
    @strawberry.mutation(extensions=[requires("dataset:write", use_case="input.use_case")])
    async def create_dataset(self, info: Info[Context, None], input: DatasetCreate, file: Upload) -> DatasetType:
        ctx = info.context
        store, settings = ctx.platform.file_store, ctx.platform.settings
        await service.check_can_create(ctx.session, ctx.principal, input.use_case, input.key, input.name)
        temp = await service.write_stream(store, _read_upload(file), settings.max_dataset_bytes)
        dataset = await service.create_from_file(
            ctx.session,
            ctx.principal,
            store,
            temp,
            use_case=input.use_case,
            name=input.name,
            key=input.key,
            source=input.source.value if input.source else None,
            max_bytes=settings.max_dataset_bytes,
        )
        return DatasetType(row=dataset)

    @strawberry.mutation(extensions=[requires("dataset:write", use_case="input.use_case")])
    async def create_dataset_from_multipart_upload(
        self, info: Info[Context, None], input: DatasetCreateFromMultipartUpload
    ) -> DatasetUploadProcessingStatusType:
        ctx = info.context
        upload, dataset = await uploads.create_dataset_from_upload(
            ctx.session,
            ctx.principal,
            ctx.platform.file_store,
            session_id=input.upload_session_id,
            use_case=input.use_case,
            name=input.name,
            key=input.key,
            source=input.source.value if input.source else None,
            max_bytes=ctx.platform.settings.max_dataset_bytes,
        )
        return _status(upload, dataset.id)

    @strawberry.mutation(extensions=[requires("dataset:write", use_case="use_case")])
    async def delete_dataset(self, info: Info[Context, None], id_or_key: IdOrKey, use_case: IdOrKey) -> bool:
        ctx = info.context
        return await service.delete_dataset(ctx.session, ctx.principal, ctx.platform.file_store, id_or_key, use_case)
