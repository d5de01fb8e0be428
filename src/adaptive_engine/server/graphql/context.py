"""Per-request GraphQL context: the database session, the caller and the platform (the app's services)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from strawberry.fastapi import BaseContext

from adaptive_engine.server.auth.principal import Principal
from adaptive_engine.server.graphql.loaders import Loaders
from adaptive_engine.server.platform import Platform


@dataclass
class Context(BaseContext):
    session: AsyncSession
    principal: Principal
    platform: Platform

    def __post_init__(self) -> None:
        super().__init__()

    @cached_property
    def loaders(self) -> Loaders:
        """Batch loaders for nested fields of list items (graphql/loaders.py), made on first use."""
        return Loaders(self)


def gql_context(info: Any) -> Context:
    return info.context
