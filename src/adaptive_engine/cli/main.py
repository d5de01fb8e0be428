"""The `adaptive-engine` command."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Optional

import typer

app = typer.Typer(help="Adaptive Engine: serve models, log traffic, learn from feedback.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
from adaptive_engine.cli.recipe import recipe_app  # noqa: E402

app.add_typer(recipe_app, name="recipe")

DataDir = Annotated[Path, typer.Option("--data-dir", help="Where the database, models and files live")]
DatabaseUrl = Annotated[
    Optional[str], typer.Option("--database-url", help="postgresql+asyncpg://… (default: SQLite in the data dir)")
]


def _settings(data_dir: Path, database_url: str | None, **extra: object):  # noqa: ANN202
    from adaptive_engine.server.config import Settings

    values = {"data_dir": data_dir, **extra}
    if database_url:
        values["database_url"] = database_url
    return Settings(**values)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind")] = 8000,
    data_dir: DataDir = Path("data"),
    database_url: DatabaseUrl = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Run the server."""
    import uvicorn

    from adaptive_engine.server.app import create_app

    settings = _settings(data_dir, database_url, host=host, port=port, log_level=log_level)
    uvicorn.run(create_app(settings), host=host, port=port, log_level=log_level)


@keys_app.command("create")
def keys_create(
    email: Annotated[str, typer.Option(help="The user the key is for")],
    name: Annotated[str, typer.Option(help="A label to tell keys apart")] = "cli",
    data_dir: DataDir = Path("data"),
    database_url: DatabaseUrl = None,
) -> None:
    """Create an API key for an existing user and print it (shown once)."""
    from adaptive_engine.server.db.engine import create_engine, create_sessionmaker, upgrade
    from adaptive_engine.server.db.session import unit_of_work
    from adaptive_engine.server.domains.identity.service import create_api_key, get_user_by_email
    from adaptive_engine.server.errors import DomainError

    settings = _settings(data_dir, database_url)

    async def run() -> str:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_engine(settings.resolved_database_url)
        try:
            await upgrade(engine)
            async with unit_of_work(create_sessionmaker(engine)) as session:
                user = await get_user_by_email(session, email)
                return await create_api_key(session, user, name=name)
        finally:
            await engine.dispose()

    try:
        key = asyncio.run(run())
    except DomainError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(key)


if __name__ == "__main__":
    app()
