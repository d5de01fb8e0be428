"""REST of datasets: chunked uploads (/upload/init|part|abort) and the file of a dataset."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.guard import from_query, route_requires
from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.domains.datasets import export, service, uploads
from adaptive_engine.server.errors import Conflict, NotFound
from adaptive_engine.server.platform import platform_of
from adaptive_engine.server.rest.deps import db_session, principal
from adaptive_engine.server.rest.json_input import CheckedRoute

router = APIRouter(tags=["datasets"], route_class=CheckedRoute)


class InitChunkedUploadRequest(BaseModel):
    content_type: str | None = None
    metadata: dict[str, Any] | None = None
    total_parts_count: int = Field(ge=1, le=uploads.MAX_PARTS)


class AbortChunkedUploadRequest(BaseModel):
    session_id: str


@router.post("/upload/init", dependencies=[route_requires("dataset:write")])
async def init_upload(
    body: InitChunkedUploadRequest,
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> dict[str, str]:
    upload = await uploads.init_upload(
        session, caller, content_type=body.content_type, metadata=body.metadata, total_parts=body.total_parts_count
    )
    await session.commit()
    return {"session_id": str(upload.id)}


@router.post("/upload/part", dependencies=[route_requires("dataset:write")])
async def upload_part(
    request: Request,
    session_id: str = Query(),
    part_number: int = Query(),
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> dict[str, Any]:
    written = await uploads.put_part(
        session,
        caller,
        platform_of(request).file_store,
        session_id=session_id,
        part_number=part_number,
        chunks=request.stream(),
        max_bytes=platform_of(request).settings.max_dataset_bytes,
    )
    await session.commit()
    return {"session_id": session_id, "part_number": part_number, "size": written}


@router.delete("/upload/abort", dependencies=[route_requires("dataset:write")])
async def abort_upload(
    body: AbortChunkedUploadRequest,
    request: Request,
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> JSONResponse:
    await uploads.abort_upload(session, caller, platform_of(request).file_store, body.session_id)
    await session.commit()
    return JSONResponse({"session_id": body.session_id, "aborted": True})


@router.get(
    "/datasets/{id_or_key}/download", dependencies=[route_requires("use_case:read", use_case=from_query("use_case"))]
)
async def download_dataset(
    id_or_key: str,
    request: Request,
    use_case: str = Query(),
    format: str = Query("jsonl"),
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> Response:
    fmt = export.check_format(format)
    dataset = await service.get_dataset(session, caller, id_or_key, use_case)
    if dataset.status != "READY":
        raise Conflict(f"dataset '{dataset.key}' is {dataset.status}: its file is not ready")
    path = platform_of(request).file_store.path(dataset.path)
    if not path.is_file():
        raise NotFound(f"the file of dataset '{dataset.key}' is missing")
    if fmt == "jsonl":
        return FileResponse(path, media_type="application/jsonl", filename=f"{dataset.key}.jsonl")
    return _attachment(export.encode(export.file_rows(path), fmt, export.DATASET_COLUMNS), fmt, dataset.key)


@router.get("/completions/export", dependencies=[route_requires("use_case:read", use_case=from_query("use_case"))])
async def export_completions(
    request: Request,
    use_case: str = Query(),
    filter: str | None = Query(None, description="A ListCompletionsFilterInput as JSON"),
    format: str = Query("jsonl"),
    as_dataset: bool = Query(False, description="Rows as a PROMPT_COMPLETION dataset's"),
    session: AsyncSession = Depends(db_session),
    caller: Principal = Depends(principal),
) -> Response:
    """The completions the filter selects, oldest first, streamed."""
    fmt = export.check_format(format)
    flt = export.filter_from_json(filter, use_case)
    conditions = await export.interaction_conditions(session, caller, use_case, flt)
    await session.rollback()  # the rows stream on connections of their own; this one is done
    return _attachment(
        export.interactions(platform_of(request).engine, conditions, as_dataset, fmt), fmt, "completions"
    )


def _attachment(chunks: AsyncIterator[bytes], fmt: str, name: str) -> StreamingResponse:
    return StreamingResponse(
        chunks,
        media_type=export.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}.{fmt}"'},
    )
