"""The OpenAPI document declares the JSON bodies of routes that parse their body themselves (the logging
routes' fast path, the inference routes): FastAPI only sees bodies it parses. Such a route names its model::

    @router.post("/chat/completions", dependencies=[INFERENCE])
    @json_body(ChatBody)
    async def chat_completions(request: Request, ...): ...

and :func:`install_openapi` adds them to the document FastAPI builds (their models under
``components/schemas``, as FastAPI's own are).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import FastAPI
from pydantic import TypeAdapter

F = TypeVar("F", bound=Callable[..., Any])
REF_TEMPLATE = "#/components/schemas/{model}"


def json_body(model: Any) -> Callable[[F], F]:
    """Mark an endpoint that reads a JSON body of type ``model`` itself (see also rest.json_input.CheckedRoute,
    which decodes and checks that body before the endpoint runs)."""

    def mark(endpoint: F) -> F:
        endpoint.__json_body__ = model  # type: ignore[attr-defined]
        return endpoint

    return mark


def install_openapi(app: FastAPI) -> None:
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            declare_json_bodies(app, build())
        return app.openapi_schema  # type: ignore[return-value]

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the document


def declare_json_bodies(app: FastAPI, document: dict[str, Any]) -> None:
    from adaptive_engine.server.auth.guard import iter_routes

    declared: list[tuple[tuple[str, str], TypeAdapter[Any]]] = []
    for path, methods, dependant, _ in iter_routes(app):
        model = getattr(getattr(dependant, "call", None), "__json_body__", None)
        if model is not None:
            declared.extend(((path, method.lower()), TypeAdapter(model)) for method in sorted(methods))
    if not declared:
        return
    bodies, definitions = TypeAdapter.json_schemas(
        [(key, "validation", adapter) for key, adapter in declared], ref_template=REF_TEMPLATE
    )
    components = document.setdefault("components", {}).setdefault("schemas", {})
    for name, definition in definitions.get("$defs", {}).items():
        # A model FastAPI also declared (another route parses it) is there already, written without its
        # `default: null`s; another model of the same name is a mistake to fix (rename one).
        if _without_null_defaults(components.setdefault(name, definition)) != _without_null_defaults(definition):
            raise RuntimeError(f"two different request models are named {name!r} in the OpenAPI document")
    for key, _ in declared:
        path, method = key
        document["paths"][path][method]["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": bodies[(key, "validation")]}},
        }


def _without_null_defaults(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _without_null_defaults(v) for k, v in schema.items() if not (k == "default" and v is None)}
    if isinstance(schema, list):
        return [_without_null_defaults(v) for v in schema]
    return schema
