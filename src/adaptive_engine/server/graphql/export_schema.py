"""Write the GraphQL schema (SDL) to a file, or stdout: the console generates its operation types from it.

python -m adaptive_engine.server.graphql.export_schema console/schema.graphql
"""

from __future__ import annotations

import sys
from pathlib import Path

from adaptive_engine.server.graphql.schema import build_schema


def main(argv: list[str]) -> None:
    sdl = build_schema().as_str() + "\n"
    if not argv:
        sys.stdout.write(sdl)
        return
    target = Path(argv[0])
    # Unchanged schema, untouched file: the console build is not redone for nothing.
    if not target.is_file() or target.read_text() != sdl:
        target.write_text(sdl)


if __name__ == "__main__":
    main(sys.argv[1:])
