"""Permission table rows of datasets (swept by identity; the datasets domain may move them to its folder)."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from adaptive_engine.sdk.errors import PermissionDeniedError
from tests.enforcement import Case, gql, rest

ROWS = [{"messages": [{"role": "user", "content": "hi"}], "completion": "hello"}]


def _file() -> str:
    path = Path(tempfile.mkdtemp()) / "rows.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in ROWS) + "\n")
    return str(path)


def _setup(w) -> None:
    w.extra["dataset"] = w.admin.datasets.upload(_file(), dataset_key=f"ds-{w.suffix}", use_case=w.uc_a)


def _datasets(a, w):
    return sorted(d.key or d.id for d in a.datasets.list(use_case=w.uc_a))


def _status(c, w, uc):
    query = (
        "query S($input: DatasetUploadProcessingStatusInput!) {"
        " datasetUploadProcessingStatus(input: $input) { datasetId status } }"
    )
    return gql(c, query, {"input": {"useCase": uc, "datasetId": w.extra["dataset"].id}})


def _from_upload(c, w, uc):
    # The caller's own upload session (one they could not open is borrowed from the admin: the field's
    # guard must refuse before the session is looked at).
    owner = c
    try:
        session_id = rest(c, "POST", "/upload/init", json={"total_parts_count": 1})["session_id"]
    except PermissionDeniedError:
        owner = w.admin
        session_id = rest(owner, "POST", "/upload/init", json={"total_parts_count": 1})["session_id"]
    content = Path(_file()).read_bytes()
    rest(
        owner,
        "POST",
        "/upload/part",
        params={"session_id": session_id, "part_number": 1},
        content=content,
        headers={"Content-Type": "application/octet-stream"},
    )
    query = (
        "mutation M($input: DatasetCreateFromMultipartUpload!) {"
        " createDatasetFromMultipartUpload(input: $input) { datasetId status } }"
    )
    return gql(c, query, {"input": {"useCase": uc, "name": w.fresh("up"), "uploadSessionId": session_id}})


def _delete(c, w, uc):
    return c.datasets.delete(f"victim-{w.suffix}", use_case=uc)


def _setup_victim(w) -> None:
    w.admin.datasets.upload(_file(), dataset_key=f"victim-{w.suffix}", use_case=w.uc_a)


CASES = [
    Case(
        ("Query.dataset",),
        on_use_case=lambda c, w, uc: c.datasets.get(f"ds-{w.suffix}", use_case=uc),
        allowed_as=("viewer",),
        denied_as=(),
        setup=_setup,
    ),
    Case(
        ("Query.datasets",),
        on_use_case=lambda c, w, uc: c.datasets.list(use_case=uc),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(("Query.dataset_upload_processing_status",), on_use_case=_status, allowed_as=("viewer",), denied_as=()),
    Case(
        ("Mutation.create_dataset",),
        on_use_case=lambda c, w, uc: c.datasets.upload(_file(), dataset_key=w.fresh("ds"), use_case=uc),
        snapshot=_datasets,
    ),
    Case(("Mutation.create_dataset_from_multipart_upload",), on_use_case=_from_upload, snapshot=_datasets),
    Case(
        ("Mutation.delete_dataset",),
        on_use_case=_delete,
        setup=_setup_victim,
        snapshot=lambda a, w: f"victim-{w.suffix}" in _datasets(a, w),
    ),
    Case(
        ("GET /api/v1/datasets/{id_or_key}/download",),
        on_use_case=lambda c, w, uc: rest(
            c, "GET", f"/datasets/ds-{w.suffix}/download", params={"use_case": uc}, raw=True
        ),
        allowed_as=("viewer",),
        denied_as=(),
    ),
    Case(
        ("POST /api/v1/upload/init", "DELETE /api/v1/upload/abort"),
        op=lambda c, w: rest(
            c,
            "DELETE",
            "/upload/abort",
            json={"session_id": rest(c, "POST", "/upload/init", json={"total_parts_count": 1})["session_id"]},
        ),
        allowed_as=("editor",),
        denied_as=("viewer",),
    ),
    Case(
        ("POST /api/v1/upload/part",),
        op=lambda c, w: rest(
            c,
            "POST",
            "/upload/part",
            params={
                "session_id": rest(w.admin, "POST", "/upload/init", json={"total_parts_count": 1})["session_id"],
                "part_number": 1,
            },
        ),
        allowed_as=("admin",),
        denied_as=("viewer",),
    ),
]
