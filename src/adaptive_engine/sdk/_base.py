"""Client configuration and the resource base shared by Adaptive and AsyncAdaptive."""

from __future__ import annotations

import functools
import os
from collections.abc import Awaitable, Callable, Generator
from types import MethodType
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from adaptive_engine.sdk.errors import UseCaseNotSetError

if TYPE_CHECKING:
    from adaptive_engine.sdk.client import Adaptive, AsyncAdaptive

R = TypeVar("R")
P = ParamSpec("P")
# The client that owns a resource: its operations return the result on Adaptive, an awaitable of it on
# AsyncAdaptive (what a caller's type checker sees; one generator serves both at run time).
C = TypeVar("C", bound="Adaptive | AsyncAdaptive")
# An operation's own type: a generator of requests that returns R (``def get(...) -> Returns[Model]``).
Returns = Generator[Any, Any, R]


class APIObject(BaseModel):
    """Base of the SDK's typed return objects: snake_case attributes over the camelCase wire names."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")


def resolve_api_key(api_key: str | None) -> str:
    key = api_key or os.environ.get("ADAPTIVE_API_KEY")
    if not key:
        raise ValueError("API key not found: pass api_key or set the ADAPTIVE_API_KEY environment variable")
    return key


class Operation(Generic[P, R]):
    """A resource method written as a generator of requests, bound on access to the client's transport: a
    plain call on Adaptive, an awaitable on AsyncAdaptive. Typed per client through ``__get__``."""

    def __init__(self, method: Callable[Concatenate[Any, P], Generator[Any, Any, R]]) -> None:
        @functools.wraps(method)
        def run(resource: Resource[Any], *args: Any, **kwargs: Any) -> Any:
            return resource._client._transport.run(method(resource, *args, **kwargs))

        self._function = run

    @overload
    def __get__(self, resource: None, owner: type | None = None) -> Callable[..., Any]: ...
    @overload
    def __get__(self, resource: Resource[Adaptive], owner: type | None = None) -> Callable[P, R]: ...
    @overload
    def __get__(self, resource: Resource[AsyncAdaptive], owner: type | None = None) -> Callable[P, Awaitable[R]]: ...
    def __get__(self, resource: Resource[Any] | None, owner: type | None = None) -> Callable[..., Any]:
        # A bound method as a plain function gives: inspect.signature and help() read the method's own.
        return self._function if resource is None else MethodType(self._function, resource)


def operation(method: Callable[Concatenate[Any, P], Generator[Any, Any, R]]) -> Operation[P, R]:
    """Turn a generator method (yielding requests) into a method of the client that owns the resource."""
    return Operation(method)


class Resource(Generic[C]):
    def __init__(self, client: C) -> None:
        self._client = client

    def use_case_key(self, use_case: str | None) -> str:
        key = use_case or self._client.default_use_case
        if not key:
            raise UseCaseNotSetError(
                "no use case given: pass use_case=... or call client.set_default_use_case(...) first"
            )
        return key
