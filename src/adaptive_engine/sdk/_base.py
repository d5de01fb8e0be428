"""Client configuration and the resource base shared by Adaptive and AsyncAdaptive."""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from adaptive_engine.sdk.errors import UseCaseNotSetError

if TYPE_CHECKING:
    from adaptive_engine.sdk.client import Adaptive, AsyncAdaptive

R = TypeVar("R")


class APIObject(BaseModel):
    """Base of the SDK's typed return objects: snake_case attributes over the camelCase wire names."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


def resolve_api_key(api_key: str | None) -> str:
    key = api_key or os.environ.get("ADAPTIVE_API_KEY")
    if not key:
        raise ValueError("API key not found: pass api_key or set the ADAPTIVE_API_KEY environment variable")
    return key


def operation(method: Callable[..., Generator[Any, Any, R]]) -> Callable[..., R]:
    """Turn a generator method (yielding requests) into a method of the client that owns the resource:
    a plain call on Adaptive, an awaitable on AsyncAdaptive."""

    @functools.wraps(method)
    def run(self: Resource, *args: Any, **kwargs: Any) -> Any:
        return self._client._transport.run(method(self, *args, **kwargs))

    return run


class Resource:
    def __init__(self, client: Adaptive | AsyncAdaptive) -> None:
        self._client = client

    def use_case_key(self, use_case: str | None) -> str:
        key = use_case or self._client.default_use_case
        if not key:
            raise UseCaseNotSetError(
                "no use case given: pass use_case=... or call client.set_default_use_case(...) first"
            )
        return key
