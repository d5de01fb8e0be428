"""Whether a dataset's rows give a grader (or a reward server) what it reads, checked before a job runs on them.

- a reward server with a metadata schema (``RemoteEnv.metadata_schema``) gets each row's ``metadata``: every
  row's metadata must validate against that schema;
- the FAITHFULNESS and CONTEXT_RELEVANCY prebuilt graders judge an answer against the context the model was
  given: every row needs a message besides its last user turn (``messages``; a bare ``prompt`` has none);
- other graders read the prompt and the completion, which every dataset row has or a job generates.

The file is read line by line in a worker thread; the first row that fails is named.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.lookup import get_by_id_or_key
from adaptive_engine.server.db.models import RemoteEnv
from adaptive_engine.server.domains.datasets.service import get_dataset
from adaptive_engine.server.domains.graders import judges
from adaptive_engine.server.domains.graders.service import get_grader
from adaptive_engine.server.errors import NotFound
from adaptive_engine.server.jobs.storage import FileStore

NEEDS_CONTEXT = {judges.PrebuiltKey.FAITHFULNESS.value, judges.PrebuiltKey.CONTEXT_RELEVANCY.value}

# A row's problem (None: fine).
RowCheck = Callable[[dict[str, Any]], str | None]


@dataclass(frozen=True)
class Validation:
    valid: bool
    message: str


def _scan(path: Path, check: RowCheck) -> Validation:
    rows = 0
    with open(path, "rb") as lines:
        for line in lines:
            if not line.strip():
                continue
            rows += 1
            problem = check(json.loads(line))
            if problem is not None:
                return Validation(False, f"row {rows}: {problem}")
    return Validation(True, f"all {rows} rows fit")


async def _validate(store: FileStore, dataset: Any, check: RowCheck) -> Validation:
    path = store.path(dataset.path)
    if not path.is_file():
        raise NotFound(f"the file of dataset '{dataset.key}' is missing")
    return await asyncio.to_thread(_scan, path, check)


def _metadata_check(schema: dict[str, Any]) -> RowCheck:
    validator = jsonschema.Draft202012Validator(schema)

    def check(row: dict[str, Any]) -> str | None:
        error = jsonschema.exceptions.best_match(validator.iter_errors(row.get("metadata") or {}))
        if error is None:
            return None
        where = "/".join(str(p) for p in error.absolute_path)
        return f"metadata{'/' + where if where else ''}: {error.message}"

    return check


def _has_context(row: dict[str, Any]) -> str | None:
    context, _ = judges._split_last_user(row.get("messages") or [])  # the judges' own rule
    if not any(str(m.get("content", "")).strip() for m in context):
        return "no context besides the last user message (the grader judges the answer against it)"
    return None


async def for_remote_env(
    session: AsyncSession, principal: Principal, store: FileStore, *, remote_env: str, dataset: str, use_case: str
) -> Validation:
    dataset_row = await get_dataset(session, principal, dataset, use_case)
    env = await get_by_id_or_key(session, RemoteEnv, remote_env, "remote environment")
    if not env.metadata_schema:
        return Validation(True, f"remote environment '{env.key}' declares no metadata schema: every row fits")
    return await _validate(store, dataset_row, _metadata_check(env.metadata_schema))


async def for_grader(
    session: AsyncSession, principal: Principal, store: FileStore, *, grader: str, dataset: str, use_case: str
) -> Validation:
    dataset_row = await get_dataset(session, principal, dataset, use_case)
    found = await get_grader(session, principal, use_case, grader)
    config = found.config or {}
    if found.grader_type == "PREBUILT" and config.get("criteria") in NEEDS_CONTEXT:
        return await _validate(store, dataset_row, _has_context)
    if found.grader_type == "REMOTE":
        schema = (
            (await session.execute(select(RemoteEnv.metadata_schema).where(RemoteEnv.url == config.get("url"))))
            .scalars()
            .first()
        )
        if schema:
            return await _validate(store, dataset_row, _metadata_check(schema))
    return Validation(True, f"grader '{found.key}' reads the prompt and the completion, which every row gives")
