"""Where datasets, recipes and artifacts are kept: a folder (data dir or a mounted object store path).

Paths stored in the database are relative to it, so the folder can move.
"""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

from adaptive_engine.server.errors import Internal


class FileStore:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, relative: str) -> Path:
        full = (self.root / relative).resolve()
        if self.root.resolve() not in full.parents and full != self.root.resolve():
            raise Internal("stored path escapes the file store")
        return full

    def temp_path(self, suffix: str = "") -> Path:
        folder = self.root / "tmp"
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{uuid.uuid4().hex}{suffix}"

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
