"""Models a job made: a folder in the job's own folder, or a zip sent by a job that runs away from the
server, registered through the models domain with the job's lineage and attached to the job's use case."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.lookup import find_by_id_or_key
from adaptive_engine.server.db.models import (
    CustomRecipe,
    Job,
    JobArtifact,
    Model,
    UseCase,
)
from adaptive_engine.server.domains.jobs.service import MAX_ARTIFACT_BYTES, running_job
from adaptive_engine.server.domains.models.service import attach, register_folder
from adaptive_engine.server.errors import (
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from adaptive_engine.server.files import ZipLimits, copy_chunks, unzip
from adaptive_engine.server.jobs.storage import FileStore

# A model folder's files: weights compress little, so its archive unpacks to at most twice the upload limit.
MODEL_ARCHIVE_LIMITS = ZipLimits(max_entries=10_000, max_bytes=2 * MAX_ARTIFACT_BYTES)


async def register_model(
    session: AsyncSession,
    principal: Principal,
    job_id: str,
    spec: dict[str, Any],
    *,
    store: FileStore | None = None,
    jobs_dir: Path | None = None,
) -> tuple[Model, JobArtifact]:
    """Register a folder a job produced as a model (through the models domain), with its lineage, and
    attach it to the job's use case unless asked not to (a job of no use case attaches nothing).

    A model conversion's folder, made in its own job folder, is moved into the file store's
    models/ first, so the model outlives the job's scratch space (``jobs_dir``: the runner's folder of job folders)."""
    job = await running_job(session, principal, job_id)
    principal.require_registry_for_job(job.id)
    if not spec.get("path"):
        raise InvalidInput("path must name the model folder")
    folder = Path(str(spec["path"])).resolve()
    job_dir = (jobs_dir / str(job.id)).resolve() if jobs_dir is not None else None
    in_job_dir = job_dir is not None and job_dir in folder.parents
    if principal.job_id is not None and not (in_job_dir and _stays_inside(folder, job_dir)):  # type: ignore[arg-type]
        # A job's key registers what its job made, not any folder the server can read.
        raise PermissionDenied("a job registers only model folders inside its own job folder (no links out of it)")
    if job.kind == "MODEL_CONVERSION" and store is not None and in_job_dir and folder.is_dir():
        spec = {**spec, "path": str(store.place(folder, f"models/{uuid.uuid4()}"))}
    return await _register(session, principal, job, spec)


def _stays_inside(folder: Path, root: Path) -> bool:
    """Whether no symbolic link under ``folder`` leads outside ``root``."""
    for parent, dirs, files in os.walk(folder):
        for name in (*dirs, *files):
            entry = Path(parent, name)
            if entry.is_symlink() and root not in entry.resolve().parents:
                return False
    return True


async def _register(
    session: AsyncSession, principal: Principal, job: Job, spec: dict[str, Any]
) -> tuple[Model, JobArtifact]:
    kind = str(spec.get("kind") or "chat")
    if kind not in ("chat", "embedding"):
        raise InvalidInput("model kind must be 'chat' or 'embedding'")
    backbone = None
    if spec.get("base_model"):
        backbone = await find_by_id_or_key(session, Model, str(spec["base_model"]))
        if backbone is None:
            raise NotFound(f"base model '{spec['base_model']}' not found")
    key = str(spec.get("key") or "")
    model = await register_folder(
        session, path=str(spec.get("path") or ""), name=str(spec.get("name") or key), key=key or None
    )
    recipe: CustomRecipe | None = job.recipe
    use_case: UseCase | None = job.use_case
    model.kind = kind
    model.backbone_id = backbone.id if backbone else None
    model.lineage = {
        "job_id": str(job.id),
        "recipe": recipe.key if recipe else None,
        "recipe_hash": job.recipe_hash,
        "use_case": use_case.key if use_case else None,
        "base_model": backbone.key if backbone else None,
        "args": job.args,
        "metadata": spec.get("metadata") or {},
    }
    await session.flush()
    if spec.get("attach", True) and use_case is not None:
        await attach(session, principal, use_case.key, model.key)
    artifact = JobArtifact(
        job_id=job.id,
        name=model.key,
        kind="MODEL",
        status="READY",
        uri=f"model://{model.key}",
        artifact_metadata={"model_id": str(model.id), "model_key": model.key, "path": model.source.get("path")},
    )
    session.add(artifact)
    await session.flush()
    return model, artifact


async def register_uploaded_model(
    session: AsyncSession,
    principal: Principal,
    store: FileStore,
    job_id: str,
    spec: dict[str, Any],
    chunks: AsyncIterator[bytes],
) -> tuple[Model, JobArtifact]:
    """A model folder sent as a zip by a job that runs away from the server (Ray): unpacked under the
    file store, then registered like a local folder."""

    job = await running_job(session, principal, job_id)
    principal.require_registry_for_job(job.id)
    temp = store.temp_path(".zip")
    folder = store.temp_path()
    try:
        await copy_chunks(chunks, temp, MAX_ARTIFACT_BYTES, "model archive is larger than 10 GB")
        unzip(temp, folder, MODEL_ARCHIVE_LIMITS, what="the model archive")
        relative = f"models/{uuid.uuid4()}"
        target = store.place(folder, relative)
        try:
            return await _register(session, principal, job, {**spec, "path": str(target)})
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
    finally:
        temp.unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)
