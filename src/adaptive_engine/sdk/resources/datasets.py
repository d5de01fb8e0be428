from __future__ import annotations

import builtins
import math
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adaptive_engine.sdk._base import C, Resource, Returns, operation
from adaptive_engine.sdk._requests import GraphQL, Rest, Sleep
from adaptive_engine.sdk.resources.interactions import filter_input
from adaptive_engine.sdk.types import Dataset, DatasetPreview

DATASET_FIELDS = """
  id key name createdAt kind records source sizeBytes status error downloadUrl
  progress { processedLines totalLines progress }
  metricsUsage { feedbackCount comparisonCount
    metric { id key name kind description scoringType createdAt hasDirectFeedbacks hasComparisonFeedbacks } }
"""
# Files above this size go through the chunked REST upload, in parts of CHUNK_SIZE bytes.
CHUNKED_THRESHOLD = 5 * 1024 * 1024
CHUNK_SIZE = 5 * 1024 * 1024


class Datasets(Resource[C]):
    """JSONL datasets of a use case."""

    @operation
    def upload(
        self,
        file_path: str,
        dataset_key: str,
        name: str | None = None,
        use_case: str | None = None,
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Returns[Dataset]:
        """Upload a JSONL file as a dataset. Each line is a row: ``messages`` (or ``prompt``), optionally
        ``completion``, ``feedback`` (``{metric: value}``), or ``chosen``/``rejected`` for preferences.
        The whole file is validated; a bad line rejects it with the line number and the reason.
        ``on_progress(bytes_sent, total_bytes)`` is called as the file goes (after each 5 MB part)."""
        use_case = self.use_case_key(use_case)
        path = Path(file_path)
        if not path.is_file():
            raise FileNotFoundError(f"dataset file not found: {file_path}")
        size = os.path.getsize(path)
        if size > CHUNKED_THRESHOLD:
            dataset_id = yield from self._chunked(path, size, dataset_key, name, use_case, on_progress)
            return (yield from self._get(dataset_id, use_case))
        query = (
            "mutation CreateDataset($input: DatasetCreate!, $file: Upload!) { createDataset(input:"
            f" $input, file: $file) {{ {DATASET_FIELDS} }} }}"
        )
        variables = {"input": {"useCase": use_case, "name": name or dataset_key, "key": dataset_key}}
        data = yield GraphQL(query, variables, files={"file": (path.stem, path.read_bytes(), "application/jsonl")})
        if on_progress is not None:
            on_progress(size, size)
        return Dataset.model_validate(data["createDataset"])

    def _chunked(
        self,
        path: Path,
        size: int,
        dataset_key: str,
        name: str | None,
        use_case: str,
        on_progress: Callable[[int, int], None] | None,
    ) -> Returns[str]:
        parts = max(1, math.ceil(size / CHUNK_SIZE))
        init = yield Rest(
            "POST", "/upload/init", json={"content_type": "application/jsonl", "total_parts_count": parts}
        )
        session_id = init["session_id"]
        try:
            with open(path, "rb") as source:
                for number in range(1, parts + 1):
                    yield Rest(
                        "POST",
                        "/upload/part",
                        params={"session_id": session_id, "part_number": number},
                        content=source.read(CHUNK_SIZE),
                        headers={"Content-Type": "application/octet-stream"},
                    )
                    if on_progress is not None:
                        on_progress(min(number * CHUNK_SIZE, size), size)
            query = (
                "mutation CreateDatasetFromMultipartUpload($input: DatasetCreateFromMultipartUpload!) {"
                " createDatasetFromMultipartUpload(input: $input) { datasetId status error } }"
            )
            data = yield GraphQL(
                query,
                {
                    "input": {
                        "useCase": use_case,
                        "name": name or dataset_key,
                        "key": dataset_key,
                        "uploadSessionId": session_id,
                    }
                },
            )
            status = data["createDatasetFromMultipartUpload"]
            while status["status"] == "PENDING":
                yield Sleep(1.0)
                poll = (
                    "query DatasetUploadProcessingStatus($input: DatasetUploadProcessingStatusInput!) {"
                    " datasetUploadProcessingStatus(input: $input) { datasetId status error } }"
                )
                data = yield GraphQL(poll, {"input": {"useCase": use_case, "datasetId": status["datasetId"]}})
                status = data["datasetUploadProcessingStatus"]
            if status["status"] == "ERROR":
                from adaptive_engine.sdk.errors import ServerError

                raise ServerError(f"dataset processing failed: {status.get('error')}")
            return str(status["datasetId"])
        except BaseException:
            try:
                yield Rest("DELETE", "/upload/abort", json={"session_id": session_id})
            except Exception:  # the original error is what matters
                pass
            raise

    def _get(self, key: str, use_case: str) -> Returns[Dataset]:
        query = (
            "query Dataset($key: IdOrKey!, $useCase: IdOrKey!) { dataset(idOrKey: $key, useCase:"
            f" $useCase) {{ {DATASET_FIELDS} }} }}"
        )
        data = yield GraphQL(query, {"key": key, "useCase": use_case})
        return Dataset.model_validate(data["dataset"])

    @operation
    def get(self, key: str, use_case: str | None = None) -> Returns[Dataset]:
        """A dataset by key (or id)."""
        return (yield from self._get(key, self.use_case_key(use_case)))

    @operation
    def list(self, use_case: str | None = None) -> Returns[list[Dataset]]:
        """Datasets of the use case."""
        query = f"query Datasets($useCase: IdOrKey!) {{ datasets(useCase: $useCase) {{ {DATASET_FIELDS} }} }}"
        data = yield GraphQL(query, {"useCase": self.use_case_key(use_case)})
        return [Dataset.model_validate(d) for d in data["datasets"]]

    @operation
    def delete(self, key: str, use_case: str | None = None) -> Returns[bool]:
        """Delete a dataset and its file."""
        query = (
            "mutation DeleteDataset($key: IdOrKey!, $useCase: IdOrKey!) { deleteDataset(idOrKey: $key,"
            " useCase: $useCase) }"
        )
        data = yield GraphQL(query, {"key": key, "useCase": self.use_case_key(use_case)})
        return bool(data["deleteDataset"])

    def _from_filters_input(
        self,
        use_case: str,
        kind: str,
        filters: dict[str, Any] | None,
        completion_ids: builtins.list[str | uuid.UUID] | None,
        exclude: builtins.list[str | uuid.UUID] | None,
        metrics: builtins.list[str] | None,
        sample_size: int | None,
        selection: str | None,
        name: str | None = None,
        key: str | None = None,
    ) -> dict[str, Any]:
        if (filters is None) == (completion_ids is None):
            raise ValueError("give either filters or completion_ids")
        query = (
            {"fromSelection": {"include": [str(c) for c in completion_ids]}}
            if completion_ids is not None
            else {
                "fromFilters": {"filters": filter_input(use_case, filters), "exclude": [str(c) for c in exclude or []]}
            }
        )
        out: dict[str, Any] = {
            "useCase": use_case,
            "name": name or key or "preview",
            "kind": kind,
            "completionQuery": query,
        }
        if key is not None:
            out["key"] = key
        if metrics:
            out["metrics"] = list(metrics)
        if selection is not None or sample_size is not None:
            out["sampleConfig"] = {
                "selectionType": (selection or ("RANDOM" if sample_size else "ALL")).upper(),
                **({"sampleSize": sample_size} if sample_size is not None else {}),
            }
        return out

    @operation
    def preview_from_filters(
        self,
        kind: str,
        filters: dict[str, Any] | None = None,
        completion_ids: builtins.list[str | uuid.UUID] | None = None,
        exclude: builtins.list[str | uuid.UUID] | None = None,
        metrics: builtins.list[str] | None = None,
        sample_size: int | None = None,
        selection: str | None = None,
        use_case: str | None = None,
    ) -> Returns[DatasetPreview]:
        """What create_from_filters would write: the kind, the number of rows and the first few."""
        variables = {
            "input": self._from_filters_input(
                self.use_case_key(use_case), kind, filters, completion_ids, exclude, metrics, sample_size, selection
            )
        }
        query = "query Preview($input: DatasetCreateFromFilters!) { previewDatasetFromFilters(input: $input) }"
        data = yield GraphQL(query, variables)
        return DatasetPreview.model_validate(data["previewDatasetFromFilters"])

    @operation
    def create_from_filters(
        self,
        dataset_key: str,
        kind: str,
        filters: dict[str, Any] | None = None,
        completion_ids: builtins.list[str | uuid.UUID] | None = None,
        exclude: builtins.list[str | uuid.UUID] | None = None,
        metrics: builtins.list[str] | None = None,
        sample_size: int | None = None,
        selection: str | None = None,
        name: str | None = None,
        use_case: str | None = None,
        wait: bool = True,
    ) -> Returns[Dataset]:
        """A dataset of logged traffic: the completions ``filters`` select (the filters of interactions.list), or
        ``completion_ids``. ``kind``: PROMPT, PROMPT_COMPLETION (one chosen completion per prompt: the best on the
        first of ``metrics``, else the latest), PROMPT_COMPLETION_FEEDBACK or PREFERENCE (from logged
        comparisons; an A/B test's duels with ``filters={"ab_campaign": ...}``). ``selection``: ALL, RANDOM or
        LAST with ``sample_size``. Large datasets are written in the background: ``wait`` polls until READY."""
        use_case = self.use_case_key(use_case)
        variables = {
            "input": self._from_filters_input(
                use_case,
                kind,
                filters,
                completion_ids,
                exclude,
                metrics,
                sample_size,
                selection,
                name=name or dataset_key,
                key=dataset_key,
            )
        }
        query = (
            "mutation Create($input: DatasetCreateFromFilters!) { createDatasetFromFilters(input:"
            f" $input) {{ {DATASET_FIELDS} }} }}"
        )
        data = yield GraphQL(query, variables)
        dataset = Dataset.model_validate(data["createDatasetFromFilters"])
        while wait and dataset.status == "PROCESSING":
            yield Sleep(0.5)
            dataset = yield from self._get(dataset.id, use_case)
        if dataset.status == "FAILED":
            from adaptive_engine.sdk.errors import ServerError

            raise ServerError(f"dataset '{dataset.key}' could not be written: {dataset.error}")
        return dataset

    @operation
    def download(self, key: str, path: str, format: str = "jsonl", use_case: str | None = None) -> Returns[str]:
        """Save a dataset's rows to ``path`` as JSONL or CSV; returns the path."""
        content = yield Rest(
            "GET",
            f"/datasets/{key}/download",
            params={"use_case": self.use_case_key(use_case), "format": format},
            raw=True,
        )
        Path(path).write_bytes(content)
        return path
