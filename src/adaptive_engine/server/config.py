"""Server settings. Built explicitly (``Settings(...)``) or from ``ADAPTIVE_*`` env vars; never a global."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ADAPTIVE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    data_dir: Path = Path("data")
    database_url: str | None = Field(default=None, description="SQLAlchemy async URL; SQLite in data_dir by default")
    admin_api_key: str | None = Field(default=None, description="Bootstrap admin API key (env ADAPTIVE_ADMIN_API_KEY)")
    # Register and load the bundled local models on start. Tests that do not need them turn this off.
    bundled_models: bool = True
    # Largest request body accepted on REST and GraphQL (uploads included), in bytes.
    max_request_bytes: int = 64 * 1024 * 1024
    log_level: str = "info"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'engine.db').resolve()}"

    @property
    def is_sqlite(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")
