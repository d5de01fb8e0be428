"""Built-in recipes: every ``adaptive_engine/recipe/builtin/<name>.py`` (or ``<name>/main.py``) is a
global recipe with key ``<name>``, usable from every use case, refreshed at start when its code changed.

Registration runs in the background (it imports each recipe in a subprocess), so start-up is not held.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import logging
import zipfile
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from adaptive_engine.server.config import Settings
from adaptive_engine.server.db.models import CustomRecipe
from adaptive_engine.server.db.session import unit_of_work
from adaptive_engine.server.domains.recipes.service import JOB_KINDS, store_code
from adaptive_engine.server.errors import DomainError
from adaptive_engine.server.jobs.storage import FileStore
from adaptive_engine.server.sandbox import Sandbox
from adaptive_engine.server.timestamps import utcnow

log = logging.getLogger("adaptive_engine.recipes")
BUILTIN_DIR = Path(__file__).resolve().parents[3] / "recipe" / "builtin"
# The schema probe imports the recipe, and ours import torch and TRL: on a busy 2-core machine that took
# over the 120 s users' recipes get, and the recipe was missing until the next start. Ours are trusted.
BUILTIN_SCHEMA_TIMEOUT_S = 900.0


def builtin_sources(folder: Path = BUILTIN_DIR) -> dict[str, tuple[str, bytes]]:
    """key -> (upload filename, bytes) for each built-in recipe."""
    found: dict[str, tuple[str, bytes]] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        if path.name.startswith(("_", ".")):
            continue
        if path.is_file() and path.suffix == ".py":
            found[path.stem] = (path.name, path.read_bytes())
        elif path.is_dir() and (path / "main.py").is_file():
            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                for file in sorted(path.rglob("*")):
                    if file.is_file() and "__pycache__" not in file.parts:
                        info = zipfile.ZipInfo(file.relative_to(path).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                        archive.writestr(info, file.read_bytes())
            found[path.name] = (f"{path.name}.zip", buffer.getvalue())
    return found


async def sync_builtin_recipes(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    store: FileStore,
    sandbox: Sandbox,
    folder: Path = BUILTIN_DIR,
) -> list[str]:
    """Register or refresh the built-in recipes; returns the keys that changed."""
    changed = []
    for key, (filename, data) in builtin_sources(folder).items():
        digest = hashlib.sha256(data).hexdigest()
        async with unit_of_work(sessionmaker) as session:
            existing = (
                await session.execute(
                    select(CustomRecipe).where(CustomRecipe.use_case_id.is_(None), CustomRecipe.key == key)
                )
            ).scalar_one_or_none()
            if existing is not None and existing.content_hash == digest:
                continue
        try:
            relative, content, digest, described = await store_code(
                store,
                data,
                filename,
                max_bytes=settings.max_recipe_bytes,
                schema_timeout_s=max(settings.recipe_schema_timeout_s, BUILTIN_SCHEMA_TIMEOUT_S),
                sandbox=sandbox,
            )
        except DomainError as error:
            log.error("built-in recipe '%s' does not load: %s", key, error.message)
            continue
        kind = str(described["job_kind"]) if described.get("job_kind") in JOB_KINDS else "CUSTOM"
        async with unit_of_work(sessionmaker) as session:
            recipe = (
                await session.execute(
                    select(CustomRecipe).where(CustomRecipe.use_case_id.is_(None), CustomRecipe.key == key)
                )
            ).scalar_one_or_none()
            if recipe is None:
                recipe = CustomRecipe(use_case_id=None, key=key, name=key, builtin=True, editable=False, labels=[])
                session.add(recipe)
            recipe.description = str(described.get("description") or "").split("\n\n")[0]
            recipe.content, recipe.content_hash, recipe.path = content, digest, relative
            recipe.json_schema, recipe.job_kind, recipe.updated_at = described["schema"], kind, utcnow()
        changed.append(key)
    return changed


class BuiltinRecipes:
    """Service: registers the built-in recipes in the background after start."""

    def __init__(
        self, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], store: FileStore, sandbox: Sandbox
    ) -> None:
        self.settings = settings
        self._sessionmaker = sessionmaker
        self._store = store
        self._sandbox = sandbox
        self.task: asyncio.Task[list[str]] | None = None

    async def start(self) -> None:
        if self.settings.builtin_recipes:
            self.task = asyncio.create_task(
                sync_builtin_recipes(self.settings, self._sessionmaker, self._store, self._sandbox),
                name="builtin-recipes",
            )

    async def stop(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
            try:
                await self.task
            except (asyncio.CancelledError, Exception):
                pass
