"""Recipes: user code (a .py file or a zipped folder with main.py) with the JSON schema of its Config."""

from __future__ import annotations

import hashlib
import io
import shutil
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.db.lookup import parse_uuid
from adaptive_engine.server.db.models import CustomRecipe, Job, UseCase
from adaptive_engine.server.db.session import after_commit
from adaptive_engine.server.domains.recipes.probe import describe_recipe
from adaptive_engine.server.domains.recipes.records import RecipeRecord
from adaptive_engine.server.domains.use_cases.service import get_use_case
from adaptive_engine.server.errors import (
    AlreadyExists,
    Conflict,
    DomainError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
)
from adaptive_engine.server.files import ZipLimits, unzip
from adaptive_engine.server.jobs.storage import FileStore
from adaptive_engine.server.sandbox import Sandbox
from adaptive_engine.server.timestamps import utcnow

JOB_KINDS = frozenset({"TRAINING", "EVALUATION", "DATASET_GENERATION", "MODEL_CONVERSION", "CUSTOM"})
KIND_LABEL = "job_kind"
ZIP_MAGIC = b"PK\x03\x04"
RECIPE_ARCHIVE_LIMITS = ZipLimits(max_entries=10_000, max_bytes=500 * 1024 * 1024)


def _labels(labels: list[tuple[str, str]] | None) -> list[dict[str, str]]:
    result = []
    for key, value in labels or []:
        if not key:
            raise InvalidInput("label keys must not be empty")
        result.append({"key": key, "value": value})
    return result


def _job_kind(labels: list[dict[str, str]]) -> str:
    for label in labels:
        if label["key"] == KIND_LABEL:
            kind = label["value"].upper()
            if kind not in JOB_KINDS:
                raise InvalidInput(f"label '{KIND_LABEL}' must be one of {', '.join(sorted(JOB_KINDS))}")
            return kind
    return "CUSTOM"


def unpack(data: bytes, filename: str, into: Path) -> str:
    """Unpack an upload into ``into`` (main.py at its root); returns main.py's source."""
    into.mkdir(parents=True)
    if data[:4] == ZIP_MAGIC or filename.lower().endswith(".zip"):
        try:
            unzip(io.BytesIO(data), into, RECIPE_ARCHIVE_LIMITS, what="the archive")
        except DomainError as error:  # every refusal of an upload says "recipe rejected"
            error.message = f"recipe rejected: {error.message}"
            raise
        main = into / "main.py"
        if not main.is_file():
            raise InvalidInput("recipe rejected: the archive has no main.py at its root")
    else:
        if filename and not filename.lower().endswith(".py"):
            raise InvalidInput(f"recipe rejected: expected a .py file or a .zip archive, got '{filename}'")
        main = into / "main.py"
        main.write_bytes(data)
    try:
        return main.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidInput("recipe rejected: main.py is not UTF-8 text") from None


async def parse_schema(
    store: FileStore, content: str, *, max_bytes: int, schema_timeout_s: float, sandbox: Sandbox
) -> dict[str, Any]:
    """The JSON schema of a recipe's arguments (with its job kind and description), probed in the sandbox
    as an upload would be; nothing is stored."""
    data = content.encode("utf-8")
    if not data.strip():
        raise InvalidInput("recipeContent must not be empty")
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"recipeContent is {len(data)} bytes, over the limit of {max_bytes} bytes")
    temp = store.temp_path()
    try:
        unpack(data, "main.py", temp)
        return await describe_recipe(temp, schema_timeout_s, sandbox)
    finally:
        shutil.rmtree(temp, ignore_errors=True)


async def store_code(
    store: FileStore, data: bytes, filename: str, *, max_bytes: int, schema_timeout_s: float, sandbox: Sandbox
) -> tuple[str, str, str, dict[str, Any]]:
    """Unpack, probe and store recipe code. Returns (relative folder, content, hash, description)."""
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"recipe is {len(data)} bytes, over the limit of {max_bytes} bytes")
    if not data:
        raise InvalidInput("recipe rejected: the file is empty")
    digest = hashlib.sha256(data).hexdigest()
    temp = store.temp_path()
    try:
        content = unpack(data, filename, temp)
        schema = await describe_recipe(temp, schema_timeout_s, sandbox)
        shutil.rmtree(temp / "__pycache__", ignore_errors=True)
        relative = f"recipes/{digest}"
        if store.path(relative).exists():
            shutil.rmtree(temp)
        else:
            store.place(temp, relative)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return relative, content, digest, schema


def _visible(use_case: UseCase) -> Any:
    return or_(CustomRecipe.use_case_id == use_case.id, CustomRecipe.use_case_id.is_(None))


async def find_recipe(session: AsyncSession, use_case: UseCase, id_or_key: str) -> CustomRecipe:
    """A recipe of the use case, or a global one; the use case's own wins on a key clash."""
    as_uuid = parse_uuid(id_or_key)
    query = select(CustomRecipe).where(_visible(use_case))
    if as_uuid is not None:
        found = (await session.execute(query.where(CustomRecipe.id == as_uuid))).scalar_one_or_none()
        if found is not None:
            return found
    rows = list((await session.execute(query.where(CustomRecipe.key == str(id_or_key)))).scalars())
    rows.sort(key=lambda r: r.use_case_id is None)
    if not rows:
        raise NotFound(f"recipe '{id_or_key}' not found in use case '{use_case.key}'")
    return rows[0]


async def create_recipe(
    session: AsyncSession,
    principal: Principal,
    store: FileStore,
    *,
    use_case: str,
    name: str,
    key: str | None,
    description: str | None,
    labels: list[tuple[str, str]] | None,
    data: bytes,
    filename: str,
    max_bytes: int,
    schema_timeout_s: float,
    sandbox: Sandbox,
) -> RecipeRecord:
    target = await get_use_case(session, principal, use_case, "recipe:write")
    if not name or not name.strip():
        raise InvalidInput("a recipe needs a name")
    key = (key or name).strip()
    if not key or len(key) > 200 or any(c.isspace() for c in key):
        raise InvalidInput(f"recipe key '{key}' is malformed: 1-200 characters without spaces")
    clash = await session.execute(
        select(CustomRecipe.id).where(CustomRecipe.use_case_id == target.id, CustomRecipe.key == key)
    )
    if clash.first():
        raise AlreadyExists(f"recipe '{key}' already exists in use case '{target.key}'")
    label_list = _labels(labels)
    kind = _job_kind(label_list)
    relative, content, digest, described = await store_code(
        store, data, filename, max_bytes=max_bytes, schema_timeout_s=schema_timeout_s, sandbox=sandbox
    )
    schema = described["schema"]
    if kind == "CUSTOM" and described.get("job_kind") in JOB_KINDS:
        kind = described["job_kind"]
    now = utcnow()  # one instant: created_at's own default comes later, at the flush
    recipe = CustomRecipe(
        use_case_id=target.id,
        key=key,
        name=name,
        description=description or "",
        labels=label_list,
        content=content,
        content_hash=digest,
        path=relative,
        json_schema=schema,
        job_kind=kind,
        created_by_id=principal.user_id,
        created_at=now,
        updated_at=now,
    )
    session.add(recipe)
    await session.flush()
    await session.refresh(recipe, ["created_by"])
    return RecipeRecord.of(recipe)


async def update_recipe(
    session: AsyncSession,
    principal: Principal,
    store: FileStore,
    *,
    use_case: str,
    id_or_key: str,
    name: str | None,
    description: str | None,
    labels: list[tuple[str, str]] | None,
    data: bytes | None,
    filename: str | None,
    max_bytes: int,
    schema_timeout_s: float,
    sandbox: Sandbox,
) -> RecipeRecord:
    target = await get_use_case(session, principal, use_case, "recipe:write")
    recipe = await find_recipe(session, target, id_or_key)
    if recipe.use_case_id is None or not recipe.editable:
        raise Conflict(f"recipe '{recipe.key}' is built in and cannot be changed")
    if name is not None:
        if not name.strip():
            raise InvalidInput("a recipe's name must not be empty")
        recipe.name = name
    if description is not None:
        recipe.description = description
    if labels is not None:
        label_list = _labels(labels)
        recipe.job_kind = _job_kind(label_list)
        recipe.labels = label_list
    if data is not None:
        relative, content, digest, described = await store_code(
            store, data, filename or "main.py", max_bytes=max_bytes, schema_timeout_s=schema_timeout_s, sandbox=sandbox
        )
        recipe.path, recipe.content, recipe.content_hash = relative, content, digest
        recipe.json_schema = described["schema"]
        if labels is None and described.get("job_kind") in JOB_KINDS:
            recipe.job_kind = described["job_kind"]
    recipe.updated_at = utcnow()
    await session.flush()
    return RecipeRecord.of(recipe)


async def get_recipe(session: AsyncSession, principal: Principal, id_or_key: str, use_case: str) -> RecipeRecord:
    target = await get_use_case(session, principal, use_case)
    return RecipeRecord.of(await find_recipe(session, target, id_or_key))


async def list_recipes(
    session: AsyncSession,
    principal: Principal,
    use_case: str,
    label_filters: list[tuple[str, list[str] | None]] | None = None,
) -> list[RecipeRecord]:
    target = await get_use_case(session, principal, use_case)
    rows = await session.execute(
        select(CustomRecipe).where(_visible(target)).order_by(CustomRecipe.created_at, CustomRecipe.key)
    )
    recipes = list(rows.scalars())
    for key, values in label_filters or []:
        recipes = [
            r
            for r in recipes
            if any(label["key"] == key and (not values or label["value"] in values) for label in r.labels)
        ]
    return [RecipeRecord.of(r) for r in recipes]


async def delete_recipe(
    session: AsyncSession, principal: Principal, store: FileStore, id_or_key: str, use_case: str
) -> bool:
    target = await get_use_case(session, principal, use_case, "recipe:write")
    recipe = await find_recipe(session, target, id_or_key)
    if recipe.use_case_id is None:
        raise Conflict(f"recipe '{recipe.key}' is built in and cannot be deleted")
    running = await session.execute(
        select(Job.id).where(Job.recipe_id == recipe.id, Job.status.in_(("PENDING", "RUNNING"))).limit(1)
    )
    if running.first():
        raise Conflict(f"recipe '{recipe.key}' has jobs pending or running; cancel them first")
    path, digest = recipe.path, recipe.content_hash
    await session.delete(recipe)
    await session.flush()
    # Code folders are shared by content hash and kept while any job or recipe points at them.
    still_used = await session.execute(select(Job.id).where(Job.recipe_hash == digest).limit(1))
    other = await session.execute(select(CustomRecipe.id).where(CustomRecipe.content_hash == digest).limit(1))
    if not still_used.first() and not other.first():
        after_commit(session, lambda: store.delete(path))
    return True
