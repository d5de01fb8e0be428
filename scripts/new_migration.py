"""Generate an Alembic migration for the ORM models that have no table yet.

    python scripts/new_migration.py 0002_feedback "feedback tables" [--base 0001_core]

Domains branch off the core revision (the app applies all heads), so parallel work does not collide.
"""

from __future__ import annotations

import argparse

from alembic import command
from sqlalchemy import create_engine

from adaptive_engine.server.db.engine import alembic_config


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("rev_id")
    parser.add_argument("message")
    parser.add_argument("--base", default="0001_core", help="revision the new one builds on")
    args = parser.parse_args()
    engine = create_engine("sqlite:///:memory:")
    with engine.begin() as connection:
        config = alembic_config(connection)
        command.upgrade(config, "heads")
        # splice: the base may already have other branches on it (domains branch off the core).
        command.revision(
            config, message=args.message, autogenerate=True, rev_id=args.rev_id, head=args.base, splice=True
        )


if __name__ == "__main__":
    main()
