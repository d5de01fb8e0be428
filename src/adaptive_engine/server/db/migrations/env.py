"""Alembic environment: the app passes an open connection; the CLI can pass a URL."""

from __future__ import annotations

from alembic import context

from adaptive_engine.server.db.models import Base

target_metadata = Base.metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:
        raise RuntimeError("migrations run through adaptive_engine.server.db.engine.upgrade")
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
