"""The `adaptive-engine` command."""

from __future__ import annotations

import asyncio
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Annotated, Any

import typer

from adaptive_engine.cli.errors import ErrorHandling, fail

app = typer.Typer(
    help="Adaptive Engine: serve models, log traffic, learn from feedback.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
keys_app = typer.Typer(help="API keys (on the server's database)", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(keys_app, name="keys")
from adaptive_engine.cli.recipe import recipe_app  # noqa: E402

app.add_typer(recipe_app, name="recipe")
from adaptive_engine.cli.remote import register as register_remote_commands  # noqa: E402

register_remote_commands(app)

# None means "not given": the setting then comes from its ADAPTIVE_* variable, else its default (flags win).
DataDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Where the database, models and files live [env: ADAPTIVE_DATA_DIR; default: data]",
        show_default=False,
    ),
]
DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        help="postgresql+asyncpg://… [env: ADAPTIVE_DATABASE_URL; default: SQLite in the data dir]",
        show_default=False,
    ),
]


def _version(value: bool) -> None:
    if value:
        try:
            typer.echo(f"adaptive-engine {version('adaptive-engine')}")
        except PackageNotFoundError:
            fail("the adaptive-engine distribution is not installed (run from a source tree?)")
        raise typer.Exit()


@app.callback()
def main_options(
    _version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show the whole traceback of an error")] = False,
) -> None:
    """Adaptive Engine: serve models, log traffic, learn from feedback."""
    ErrorHandling.debug = debug


# What the [server] extra brings that the SDK alone lacks: the first one missing names the extra to install.
SERVER_MODULES = (
    "fastapi",
    "uvicorn",
    "strawberry",
    "sqlalchemy",
    "alembic",
    "aiosqlite",
    "asyncpg",
    "pydantic_settings",
)


def require_server_extra() -> None:
    """Fail with one line naming the [server] extra when `pip install adaptive-engine` (the SDK) is all there is."""
    import importlib

    for name in SERVER_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            fail(
                f"the server needs the [server] extra ({name} is not installed): pip install 'adaptive-engine[server]'"
            )


@keys_app.callback()
def keys_options() -> None:
    """API keys (on the server's database)"""
    require_server_extra()


def _settings(data_dir: Path | None, database_url: str | None, **flags: object):  # noqa: ANN202
    """The server's settings: the flags given, then ADAPTIVE_* variables, then defaults."""
    require_server_extra()
    from pydantic import ValidationError

    from adaptive_engine.server.config import Settings

    given: dict[str, Any] = {
        name: value
        for name, value in {"data_dir": data_dir, "database_url": database_url, **flags}.items()
        if value is not None
    }
    try:
        return Settings(**given)
    except ValidationError as error:
        problem = error.errors()[0]
        fail(f"setting {'.'.join(map(str, problem['loc']))}: {problem['msg']}")


@app.command()
def serve(
    host: Annotated[
        str | None,
        typer.Option(help="Interface to bind [env: ADAPTIVE_HOST; default: 127.0.0.1]", show_default=False),
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to bind [env: ADAPTIVE_PORT; default: 8000]", show_default=False)
    ] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
    log_level: Annotated[
        str | None,
        typer.Option(help="uvicorn log level [env: ADAPTIVE_LOG_LEVEL; default: info]", show_default=False),
    ] = None,
    bundled_models: Annotated[
        bool | None,
        typer.Option(
            "--bundled-models/--no-bundled-models",
            help="Load the bundled local models [env: ADAPTIVE_BUNDLED_MODELS; default: on]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the server.

    Every other setting comes from its ADAPTIVE_* variable (see docs/configuration.md); a flag wins over its
    variable."""
    import os

    from adaptive_engine.server.datadir_lock import IN_USE_EXIT_STATUS, DataDirInUse, DataDirLock

    settings = _settings(
        data_dir, database_url, host=host, port=port, log_level=log_level, bundled_models=bundled_models
    )
    host, port, log_level = settings.host, settings.port, settings.log_level
    # First of all, before the slow imports: a second server on this data dir stops here, having touched
    # nothing (no migration, no model reload, no file). The lock lives as long as this process.
    try:
        lock = DataDirLock.acquire(settings.data_dir, f"{host}:{port}")
    except DataDirInUse as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(code=IN_USE_EXIT_STATUS) from None
    # OpenMP threads that spin while they wait turn every torch op into a stall when the cores are shared
    # (the event loop, graders, jobs, other programs): a 16-row decode step took 1.4 s instead of 0.3 s
    # on 2 busy cores. Set before torch loads; job processes inherit it. An explicit value wins.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # `kill -USR1 <pid>` writes every thread's stack to stderr: how an operator (or a test) sees where a server
    # that stopped making progress is stuck, without stopping it.
    import faulthandler
    import signal

    faulthandler.register(signal.SIGUSR1, all_threads=True)
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    from adaptive_engine.server.app import create_app
    from adaptive_engine.server.connections import uvicorn_options

    served = create_app(settings, data_dir_lock=lock, announce=True, tune_gc=True)
    from adaptive_engine.server.observability.logs import json_log_config, text_log_config

    # Text (a terminal's default): uvicorn's lines tagged with the request id.
    logging_options: dict = {"log_config": text_log_config(log_level)}
    if settings.log_format == "json":  # ADAPTIVE_LOG_FORMAT=json: JSON lines, our access log instead of uvicorn's
        logging_options = {"log_config": json_log_config(log_level), "access_log": False}
        import logging

        logging.captureWarnings(True)  # Python's warnings become JSON records too
    config = uvicorn.Config(
        served, host=host, port=port, log_level=log_level, **logging_options, **uvicorn_options(settings)
    )  # logging is configured from here on
    from adaptive_engine.server.observability.logs import announce

    announce(
        f"Adaptive Engine on {settings.resolved_callback_url} (console and API; data in {settings.data_dir})",
        json_format=settings.log_format == "json",
    )
    # The port too is taken before start-up: uvicorn binds it only after the application started (which, on a
    # database shared with running replicas, is work done for nothing). It exits with status 3 when taken.
    sock = config.bind_socket()
    server = uvicorn.Server(config)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    if not server.started:
        sys.exit(STARTUP_FAILURE)


def _with_database(data_dir: Path | None, database_url: str | None, work):  # noqa: ANN001, ANN202
    """Run ``await work(session)`` in one transaction on a migrated, bootstrapped database; a domain
    error is printed and exits with status 1."""
    from adaptive_engine.server.db.engine import create_engine, create_sessionmaker, upgrade
    from adaptive_engine.server.db.session import unit_of_work
    from adaptive_engine.server.domains.identity.service import bootstrap
    from adaptive_engine.server.errors import DomainError

    settings = _settings(data_dir, database_url)

    async def run():  # noqa: ANN202
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.resolved_database_url)
        try:
            await upgrade(engine)
            sessionmaker = create_sessionmaker(engine)
            async with unit_of_work(sessionmaker) as session:
                result = await bootstrap(session, settings.data_dir, settings.admin_api_key)
            if result.generated_key:
                typer.echo(f"Admin API key (shown once): {result.generated_key}", err=True)
            async with unit_of_work(sessionmaker) as session:
                return await work(session)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(run())
    except DomainError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(code=1) from None


@keys_app.command("create")
def keys_create(
    email: Annotated[str, typer.Option(help="The user the key is for")],
    name: Annotated[str, typer.Option(help="A label to tell keys apart")] = "cli",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key for an existing user and print it (shown once)."""
    from adaptive_engine.server.domains.identity.service import create_api_key, get_user_by_email

    async def work(session):  # noqa: ANN001, ANN202
        return await create_api_key(session, await get_user_by_email(session, email), name=name)

    typer.echo(_with_database(data_dir, database_url, work))


@keys_app.command("list")
def keys_list(
    email: Annotated[str, typer.Option(help="Whose keys")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """List a user's API keys: id, prefix, state, name (the keys themselves are never stored)."""
    from sqlalchemy import select

    from adaptive_engine.server.db.models import ApiKey
    from adaptive_engine.server.domains.identity.service import get_user_by_email

    async def work(session):  # noqa: ANN001, ANN202
        user = await get_user_by_email(session, email)
        rows = await session.execute(select(ApiKey).where(ApiKey.user_id == user.id).order_by(ApiKey.created_at))
        return [(str(k.id), k.prefix, "revoked" if k.revoked_at else "active", k.name) for k in rows.scalars()]

    for key_id, prefix, state, name in _with_database(data_dir, database_url, work):
        typer.echo(f"{key_id}  {prefix}…  {state:7}  {name}")


@keys_app.command("revoke")
def keys_revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (see `keys list`) or its prefix")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke an API key: it stops working at once."""
    from adaptive_engine.server.domains.identity.service import revoke_api_key

    async def work(session):  # noqa: ANN001, ANN202
        key = await revoke_api_key(session, None, key_id)
        return f"revoked {key.id} ({key.prefix}…) of {key.user_email}"

    typer.echo(_with_database(data_dir, database_url, work))


def main() -> None:
    """The console script: errors as one line and status 1 (tracebacks with --debug)."""
    with ErrorHandling():
        app(prog_name="adaptive-engine")


if __name__ == "__main__":
    main()
