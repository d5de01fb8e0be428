"""MkDocs hook: pages named in mkdocs.yml's nav that are not in docs/ (yet) are left out of the nav, so the
strict build passes whichever optional pages a tree holds; a page that exists but has broken links still fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _present(entries: list[Any], docs_dir: Path) -> list[Any]:
    kept = []
    for entry in entries:
        if isinstance(entry, dict):
            ((title, target),) = entry.items()
            if isinstance(target, list):
                children = _present(target, docs_dir)
                if children:
                    kept.append({title: children})
            elif (docs_dir / target).is_file():
                kept.append(entry)
        elif (docs_dir / entry).is_file():
            kept.append(entry)
    return kept


def on_config(config: Any) -> Any:
    if config.nav:
        config.nav = _present(config.nav, Path(config.docs_dir))
    return config
