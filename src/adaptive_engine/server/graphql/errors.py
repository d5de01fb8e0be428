"""Turns resolver failures into GraphQL errors with ``extensions.code``, and owns the transaction.

Any error rolls the whole operation back, so a failed call changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from adaptive_engine.server.errors import INTERNAL_MESSAGE, DomainError

log = logging.getLogger("adaptive_engine.graphql")


def classify(error: GraphQLError) -> None:
    original = error.original_error
    if isinstance(original, DomainError):
        error.message = original.message
        error.extensions = {"code": original.code, **({"details": original.details} if original.details else {})}
    elif (
        original is None
        or isinstance(original, GraphQLError)
        or (not error.path and isinstance(original, (ValueError, TypeError)))
    ):
        # Parse/validation/coercion errors (before any resolver: no path), a scalar's parser refusing a value
        # among them: the request itself is malformed.
        error.extensions = {**(error.extensions or {}), "code": "INVALID_INPUT"}
    else:
        log.error("internal error in %s", error.path, exc_info=original)
        error.message = INTERNAL_MESSAGE
        error.extensions = {"code": "INTERNAL"}
        # The traceback stays in our log, never in the response.
        error.original_error = None
        error.__traceback__ = None


class ErrorsAndTransaction(SchemaExtension):
    async def on_operation(self) -> AsyncIterator[None]:
        try:
            yield
        except GraphQLError as error:
            # An extension stopped the operation while it ran (the time budget): strawberry answers with
            # this error; nothing of the operation is kept.
            classify(error)
            await self._rollback()
            raise
        result = self.execution_context.result
        errors = getattr(result, "errors", None) or self.execution_context.pre_execution_errors or []
        for found in errors:
            classify(found)
        context = self.execution_context.context
        session = getattr(context, "session", None)
        if session is None:
            return
        if errors:
            await session.rollback()
            return
        try:
            await session.commit()
        except Exception as exc:
            await session.rollback()
            log.error("commit failed", exc_info=exc)
            internal = GraphQLError(INTERNAL_MESSAGE, extensions={"code": "INTERNAL"})
            if result is not None:
                result.data = None
                result.errors = [internal]

    async def _rollback(self) -> None:
        session = getattr(self.execution_context.context, "session", None)
        if session is not None:
            await session.rollback()
