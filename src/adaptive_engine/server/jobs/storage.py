"""Where datasets, recipes and artifacts are kept: a folder (data dir or a mounted object store path).

Paths stored in the database are relative to it, so the folder can move.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from adaptive_engine.server.errors import Internal

TEMP = "tmp"  # temporaries, moved into place (or removed) by the request that wrote them


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, relative: str) -> Path:
        full = (self.root / relative).resolve()
        if self.root.resolve() not in full.parents and full != self.root.resolve():
            raise Internal("stored path escapes the file store")
        return full

    def temp_path(self, suffix: str = "") -> Path:
        folder = self.root / TEMP
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{uuid.uuid4().hex}{suffix}"

    def remove_stale_temps(self, older_than: float, limit: int) -> int:
        """Delete up to ``limit`` temporary files and folders not written to since ``older_than`` (a time
        stamp): what a crash left between writing a temporary and placing or removing it."""
        folder = self.root / TEMP
        if not folder.is_dir():
            return 0
        removed = 0
        for entry in folder.iterdir():
            if removed >= limit:
                break
            try:
                if entry.lstat().st_mtime >= older_than:
                    continue
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
            except FileNotFoundError:  # its request finished with it meanwhile
                continue
            removed += 1
        return removed

    def place(self, temp: Path, relative: str) -> Path:
        """Move a finished temporary file or folder into place (atomic on one filesystem)."""
        target = self.path(relative)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(temp, target)
        return target

    def delete(self, relative: str | None) -> None:
        if not relative:
            return
        target = self.path(relative)
        if target.is_dir():
            shutil.rmtree(target, ignore_errors=True)
        else:
            target.unlink(missing_ok=True)
