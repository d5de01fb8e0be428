"""Importing a model from the Hugging Face hub, or from a model folder on the server: a MODEL_CONVERSION job.

The mutation checks the arguments and queues the job; the job runner starts it like any other job, and its
process (``adaptive_engine/recipe/model_import.py``) downloads, checks and registers the model. The job
belongs to no use case: it is guarded by the global ``model:register`` permission.
"""

from __future__ import annotations

import hashlib
import re
import shutil
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import REGISTRY_PERMISSION, Principal
from adaptive_engine.server.db.models import Job
from adaptive_engine.server.domains.jobs.service import job_pool, queue_job
from adaptive_engine.server.domains.jobs.states import FINISHED
from adaptive_engine.server.domains.models.service import new_model_key
from adaptive_engine.server.errors import Conflict, InvalidInput
from adaptive_engine.server.jobs.runner import JobRunner
from adaptive_engine.server.jobs.storage import FileStore

CONVERTER = Path(__file__).resolve().parents[3] / "recipe" / "model_import.py"
# A hub repository id: "name" or "owner/name" (letters, digits, '-', '_', '.'; at most 96 characters each).
HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")


def model_source(model_id: str) -> str:
    """ "folder" for an absolute path (or ~) to a model folder on the server, "hub" for a repository id."""
    if model_id.startswith(("/", "~")):
        folder = Path(model_id).expanduser()
        if not folder.is_dir():
            raise InvalidInput(f"model folder '{model_id}' does not exist on the server")
        return "folder"
    if not HUB_ID.match(model_id) or ".." in model_id or "--" in model_id:
        raise InvalidInput(
            f"'{model_id}' is neither a model hub id (owner/name) nor an absolute path to a model folder on the server"
        )
    return "hub"


def place_converter(store: FileStore) -> tuple[str, str]:
    """The converter's code in the file store, where a job's code lives (recipes/<sha256>/main.py)."""
    data = CONVERTER.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    relative = f"recipes/{digest}"
    if not store.path(relative).is_dir():
        temp = store.temp_path()
        temp.mkdir(parents=True)
        (temp / "main.py").write_bytes(data)
        try:
            store.place(temp, relative)
        except OSError:  # another request placed it first
            shutil.rmtree(temp, ignore_errors=True)
    return relative, digest


async def import_hf_model(
    session: AsyncSession,
    principal: Principal,
    store: FileStore,
    *,
    model_id: str,
    name: str,
    key: str | None,
    hf_token: str | None,
    runner: JobRunner,
    compute_pool: str | None = None,
    num_gpus: int = 0,
) -> Job:
    principal.require_global(REGISTRY_PERMISSION)
    model_id = (model_id or "").strip()
    if not model_id:
        raise InvalidInput("modelId must not be empty: a model hub id (owner/name) or a model folder on the server")
    if not name or not name.strip():
        raise InvalidInput("outputModelName must not be empty")
    source = model_source(model_id)
    key = await new_model_key(session, key, name)
    if source == "folder":
        model_id = str(Path(model_id).expanduser().resolve())
    pool = await job_pool(session, compute_pool, num_gpus)
    # The key is taken only when the job registers the model: refuse a second import into the same key now.
    running = await session.execute(select(Job).where(Job.kind == "MODEL_CONVERSION", Job.status.not_in(FINISHED)))
    for other in running.scalars():
        if (other.args or {}).get("output_model_key") == key:
            raise Conflict(f"model '{key}' is already being imported by job '{other.id}'")
    args = {"model_id": model_id, "output_model_key": key, "output_model_name": name, "source": source}
    return await queue_job(
        session,
        principal,
        pool,
        name=f"import {model_id}"[:200],
        kind="MODEL_CONVERSION",
        code=place_converter(store),
        args=args,
        num_gpus=num_gpus,
        secret=hf_token or None,
        runner=runner,
    )
