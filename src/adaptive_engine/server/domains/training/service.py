"""What the built-in training and evaluation recipes ask of the server while their job runs.

- ``model_weights``: where a registered local model's weights are on this machine (the bundled GGUF and
  the cache folder the local backend converts it into, a transformers folder, or a PEFT adapter with its
  base), so a job can train on it without copying it.
- ``record_evaluation``: completions an evaluation produced, stored with source EVALUATION and their
  grader scores as feedback, in one write.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db import models as orm
from adaptive_engine.server.db.lookup import find_by_id_or_key
from adaptive_engine.server.domains.interactions.ingest import IngestWriter, Rows
from adaptive_engine.server.domains.interactions.service import (
    ingest,
    prepare_interaction,
)
from adaptive_engine.server.domains.jobs.service import running_job
from adaptive_engine.server.errors import InvalidInput, NotFound

MAX_EVALUATION_BATCH = 1000


def model_cache_dir(settings: Any) -> Path:
    """Where converted local weights live: the same folder the local backend uses."""
    configured = getattr(settings, "model_cache_dir", None)
    return Path(configured) if configured else Path(settings.data_dir) / "models"


async def model_weights(
    session: AsyncSession, principal: Principal, settings: Any, job_id: str, model_key: str
) -> dict[str, Any]:
    await running_job(session, principal, job_id)
    model = await find_by_id_or_key(session, orm.Model, model_key)
    if model is None:
        raise NotFound(f"model '{model_key}' not found")
    return await _weights(session, settings, model)


async def _weights(session: AsyncSession, settings: Any, model: orm.Model) -> dict[str, Any]:
    if model.is_external:
        raise InvalidInput(f"model '{model.key}' is served by {model.provider}: its weights are not local")
    if model.kind != "chat":
        raise InvalidInput(f"model '{model.key}' is a {model.kind} model, not a chat model")
    source = model.source or {}
    if source.get("bundled"):
        from adaptive_engine.models_bundled import (
            BundledModelError,
            bundled_chat_gguf,
            convert_gguf,
        )

        try:
            folder, gguf_file = bundled_chat_gguf()
        except BundledModelError as error:
            raise InvalidInput(str(error)) from error
        cache = model_cache_dir(settings) / model.key
        # Converted here, once: a sandboxed job sees the model cache read-only.
        await asyncio.to_thread(convert_gguf, folder, gguf_file, cache)
        return {
            "key": model.key,
            "format": "gguf",
            "path": str(folder),
            "gguf_file": gguf_file,
            "cache_dir": str(cache),
        }
    path = source.get("path")
    if not path or not Path(path).is_dir():
        raise InvalidInput(f"model '{model.key}' has no weights folder on this server")
    if model.is_adapter:
        base = await session.get(orm.Model, model.backbone_id) if model.backbone_id else None
        return {
            "key": model.key,
            "format": "adapter",
            "path": str(path),
            "base": await _weights(session, settings, base) if base is not None else None,
        }
    return {"key": model.key, "format": "transformers", "path": str(path)}


async def record_evaluation(
    session: AsyncSession, principal: Principal, writer: IngestWriter, job_id: str, bodies: list[Any]
) -> list[uuid.UUID]:
    """Store evaluation completions (REST interaction bodies, feedbacks inline) with source EVALUATION."""
    job = await running_job(session, principal, job_id)
    if not bodies:
        raise InvalidInput("no evaluation completions to record")
    if len(bodies) > MAX_EVALUATION_BATCH:
        raise InvalidInput(f"at most {MAX_EVALUATION_BATCH} evaluation completions per call, not {len(bodies)}")
    rows = Rows()
    created = []
    for i, body in enumerate(bodies):
        created.append(await prepare_interaction(session, principal, body, f"completions[{i}]", rows, writer.lookups))
    for row in rows.tables.get(orm.Completion, []):
        row["source"] = "EVALUATION"
        row["labels"] = {**row["labels"], "job_id": str(job.id)}
    await ingest(session, writer, rows)
    return [c.completion_id for c in created]
