"""GraphQL of datasets: upload (multipart), chunked-upload completion, get, list, delete."""

from __future__ import annotations

import enum
import uuid
from collections.abc import AsyncIterator
from typing import Any

import strawberry
from strawberry.types import Info

from adaptive_engine.server.auth.guard import requires
from adaptive_engine.server.domains.datasets import export, from_traffic, service, uploads
from adaptive_engine.server.domains.datasets.records import DatasetRecord, UploadRecord
from adaptive_engine.server.domains.feedback.types import MetricType, to_gql_metric
from adaptive_engine.server.domains.feedback_keys.service import keys_by_key
from adaptive_engine.server.domains.interactions.graphql import ListCompletionsFilterInput
from adaptive_engine.server.domains.use_cases.service import use_cases_by_id
from adaptive_engine.server.graphql.common import LabelFilter
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.loaders import lookup
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


@strawberry.enum(name="DatasetStatus")
class DatasetStatus(enum.Enum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    READY = "READY"
    FAILED = "FAILED"


@strawberry.enum(name="SelectionTypeInput")
class SelectionTypeInput(enum.Enum):
    ALL = "ALL"
    RANDOM = "RANDOM"
    LAST = "LAST"


@strawberry.type(name="DatasetProgress")
class DatasetProgress:
    processed_parts: int
    total_parts: int
    progress: float
    processed_lines: int
    total_lines: int


@strawberry.type(name="DatasetMetricUsage")
class DatasetMetricUsage:
    feedback_count: int
    comparison_count: int
    metric: MetricType


USE_CASES = lookup(use_cases_by_id)
METRICS_BY_KEY = lookup(keys_by_key)


async def _rows(root: DatasetType, info: Info[Context, None], offset: int = 0, limit: int = 20) -> list[JSON]:
    return [JSON(row) for row in await service.read_rows(info.context.platform.file_store, root.record, offset, limit)]


@strawberry.type(name="Dataset")
class DatasetType:
    id: uuid.UUID
    key: str | None
    name: str
    created_at: int
    kind: DatasetKind
    source: DatasetSource
    records: int | None
    size_bytes: int
    rows: list[JSON] = strawberry.field(
        resolver=_rows, description="Rows of the file, in order, from offset (0-based); limit 1 to 100"
    )
    status: DatasetStatus
    error: str | None = strawberry.field(description="Why a dataset from filters could not be written (status FAILED)")
    deleted: bool  # a deleted dataset is gone, never listed
    progress: DatasetProgress
    record: strawberry.Private[DatasetRecord]

    @strawberry.field(description="Where to download the file (JSONL; add format=csv for CSV), with this API's auth")
    async def download_url(self, info: Info[Context, None]) -> str | None:
        if self.record.status != "READY":
            return None
        use_case = await info.context.loaders.load(USE_CASES, self.record.use_case_id)
        return export.download_link(
            f"/datasets/{self.id}/download", use_case=use_case.key if use_case else str(self.record.use_case_id)
        )

    @strawberry.field
    async def metrics_usage(self, info: Info[Context, None]) -> list[DatasetMetricUsage]:
        # The feedback keys found in the rows, by key (a key no longer registered is left out).
        counts = self.record.feedback_keys
        metrics = await info.context.loaders.load_many(METRICS_BY_KEY, sorted(counts))
        return [
            DatasetMetricUsage(feedback_count=int(counts[m.key]), comparison_count=0, metric=to_gql_metric(m))
            for m in metrics
            if m is not None
        ]


def to_gql_dataset(dataset: DatasetRecord) -> DatasetType:
    ready = dataset.status == "READY"
    total = max(dataset.total_lines, dataset.records, 1)
    done = dataset.records if ready else dataset.processed_lines
    return DatasetType(
        id=dataset.id,
        key=dataset.key,
        name=dataset.name,
        created_at=epoch(dataset.created_at) or 0,
        kind=DatasetKind(dataset.kind),
        source=DatasetSource(dataset.source),
        records=dataset.records,
        size_bytes=dataset.size_bytes,
        status=DatasetStatus(dataset.status),
        error=dataset.error,
        deleted=False,
        progress=DatasetProgress(
            processed_parts=1 if ready else 0,
            total_parts=1,
            progress=1.0 if ready else min(done / total, 1.0),
            processed_lines=done,
            total_lines=max(dataset.total_lines, dataset.records),
        ),
        record=dataset,
    )


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


@strawberry.input(name="CompletionsById")
class CompletionsById:
    include: list[uuid.UUID]


@strawberry.input(name="CompletionsByFilters")
class CompletionsByFilters:
    filters: ListCompletionsFilterInput
    exclude: list[uuid.UUID] = strawberry.field(default_factory=list)


@strawberry.input(name="DatasetCompletionQuery", description="Exactly one of fromSelection, fromFilters")
class DatasetCompletionQuery:
    from_selection: CompletionsById | None = None
    from_filters: CompletionsByFilters | None = None


@strawberry.input(name="SampleConfig")
class SampleConfig:
    selection_type: SelectionTypeInput
    sample_size: int | None = None


@strawberry.input(name="FeedbackFilterInput")
class FeedbackFilterInput:
    labels: list[LabelFilter] | None = None


@strawberry.input(name="DatasetCreateFromFilters")
class DatasetCreateFromFilters:
    use_case: IdOrKey
    name: str
    completion_query: DatasetCompletionQuery
    kind: DatasetKind
    key: str | None = None
    sample_config: SampleConfig | None = None
    feedback_filters: FeedbackFilterInput | None = strawberry.field(
        default=None, description="Refused when labels are given: feedback carries no labels here"
    )
    metrics: list[IdOrKey] | None = strawberry.field(
        default=None,
        description="Feedback keys: the first chooses the completion per prompt (PROMPT_COMPLETION); "
        "they restrict the feedback (PROMPT_COMPLETION_FEEDBACK) or comparisons (PREFERENCE) taken",
    )


async def _read_upload(file: Any) -> AsyncIterator[bytes]:
    while chunk := await file.read(1 << 20):
        yield chunk


def _status(upload: UploadRecord | None, dataset_id: uuid.UUID) -> DatasetUploadProcessingStatusType:
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
        dataset = await service.get_dataset(ctx.session, ctx.principal, id_or_key, use_case)
        return to_gql_dataset(DatasetRecord.of(dataset))

    @strawberry.field(extensions=[requires("use_case:read", use_case="use_case")])
    async def datasets(self, info: Info[Context, None], use_case: IdOrKey) -> list[DatasetType]:
        ctx = info.context
        datasets = await service.list_datasets(ctx.session, ctx.principal, use_case)
        return [to_gql_dataset(DatasetRecord.of(d)) for d in datasets]

    @strawberry.field(extensions=[requires("use_case:read", use_case="input.use_case")])
    async def dataset_upload_processing_status(
        self, info: Info[Context, None], input: DatasetUploadProcessingStatusInput
    ) -> DatasetUploadProcessingStatusType:
        ctx = info.context
        dataset_id, upload = await uploads.processing_status(
            ctx.session, ctx.principal, use_case=input.use_case, dataset_id=str(input.dataset_id)
        )
        return _status(UploadRecord.of(upload) if upload is not None else None, dataset_id)

    @strawberry.field(
        description="What createDatasetFromFilters would write: {kind, count, rows (the first few)}",
        extensions=[requires("use_case:read", use_case="input.use_case")],
    )
    async def preview_dataset_from_filters(self, info: Info[Context, None], input: DatasetCreateFromFilters) -> JSON:
        ctx = info.context
        plan = await from_traffic.plan_from_input(ctx.session, ctx.principal, input)
        return JSON(await from_traffic.preview(ctx.platform.engine, ctx.session, plan))

    @strawberry.field(
        description="A link to download the completions the filter selects (JSONL; add format=csv for CSV)",
        extensions=[requires("use_case:read", use_case="filter.use_case")],
    )
    async def completion_download_url(self, info: Info[Context, None], filter: ListCompletionsFilterInput) -> str:  # noqa: A002
        return await _export_link(info, filter, as_dataset=False)

    @strawberry.field(
        description="A link to download the completions the filter selects as PROMPT_COMPLETION dataset rows",
        extensions=[requires("use_case:read", use_case="filter.use_case")],
    )
    async def completion_as_dataset_download_url(
        self, info: Info[Context, None], filter: ListCompletionsFilterInput
    ) -> str:  # noqa: A002
        return await _export_link(info, filter, as_dataset=True)


async def _export_link(info: Info[Context, None], flt: ListCompletionsFilterInput, *, as_dataset: bool) -> str:
    ctx = info.context
    # Checked now, so a bad filter is refused here rather than by the download.
    await export.interaction_conditions(ctx.session, ctx.principal, flt.use_case, flt)
    params = {"use_case": str(flt.use_case), "filter": export.filter_to_json(flt)}
    if as_dataset:
        params["as_dataset"] = "true"
    return export.download_link("/completions/export", **params)


@strawberry.type
class DatasetMutation:
    @strawberry.mutation(
        description="A dataset of the completions (or comparisons) the filters select; large ones are written in "
        "the background (status PROCESSING, then READY or FAILED)",
        extensions=[requires("dataset:write", use_case="input.use_case")],
    )
    async def create_dataset_from_filters(
        self, info: Info[Context, None], input: DatasetCreateFromFilters
    ) -> DatasetType:
        ctx = info.context
        platform = ctx.platform
        dataset = await from_traffic.create(
            ctx.session,
            ctx.principal,
            platform.engine,
            platform.file_store,
            platform.dataset_builds,
            input,
            inline_rows=platform.settings.dataset_inline_rows,
        )
        return to_gql_dataset(DatasetRecord.of(dataset))

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
        return to_gql_dataset(DatasetRecord.of(dataset))

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
        return _status(UploadRecord.of(upload) if upload is not None else None, dataset.id)

    @strawberry.mutation(extensions=[requires("dataset:write", use_case="use_case")])
    async def delete_dataset(self, info: Info[Context, None], id_or_key: IdOrKey, use_case: IdOrKey) -> bool:
        ctx = info.context
        return await service.delete_dataset(ctx.session, ctx.principal, ctx.platform.file_store, id_or_key, use_case)
