"""GraphQL input through the checks of rest/json_input.py, so GraphQL refuses what REST refuses:

- the request's JSON (body, the ``variables`` of a GET, a multipart upload's ``operations``) is decoded by
  :class:`GraphQLRouter` (a NUL, a lone surrogate, deep nesting or a huge array: 400 INVALID_INPUT);
- :class:`RefuseMalformedInput` refuses, before validation, string literals of the document and variables
  that hold a NUL (the parser itself refuses lone surrogates in literals), with the code INVALID_INPUT.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError, StringValueNode, Visitor, visit
from strawberry.extensions import SchemaExtension
from strawberry.fastapi import GraphQLRouter as StrawberryRouter

from adaptive_engine.server.errors import InvalidInput
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.rest.json_input import (
    NUL_MESSAGE,
    JsonLimits,
    check_value,
    decode_json,
)


class GraphQLRouter(StrawberryRouter):
    def __init__(self, *args: Any, limits: JsonLimits, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.json_limits = limits

    def decode_json(self, data: str | bytes) -> object:
        value = decode_json(data, self.json_limits, what="the GraphQL request")
        if not isinstance(value, (dict, list)):  # strawberry reads fields of what it gets
            raise InvalidInput("a GraphQL request, its variables and extensions must be JSON objects")
        return value


class _NulLiterals(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.found: StringValueNode | None = None

    def enter_string_value(self, node: StringValueNode, *_: Any) -> Any:
        if "\x00" in node.value:
            self.found = node
            return self.BREAK
        return None


class RefuseMalformedInput(SchemaExtension):
    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        if context.pre_execution_errors is None:  # set before validation: strawberry answers with it
            error = self._problem()
            if error is not None:
                context.pre_execution_errors = [error]
        yield

    def _problem(self) -> GraphQLError | None:
        context = self.execution_context
        literals = _NulLiterals()
        if context.graphql_document is not None:
            visit(context.graphql_document, literals)
        if literals.found is not None:
            return GraphQLError(NUL_MESSAGE, nodes=[literals.found], extensions={"code": "INVALID_INPUT"})
        if context.variables:
            ctx = context.context
            try:
                check_value(context.variables, ctx.platform.json_limits if isinstance(ctx, Context) else JsonLimits())
            except InvalidInput as exc:
                return GraphQLError(exc.message, extensions={"code": "INVALID_INPUT"})
        return None
