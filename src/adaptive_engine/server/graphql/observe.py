"""Each GraphQL operation counted and timed by its name (``adaptive_graphql_requests_total``): every request to
/api/graphql would otherwise be one series. Names are the clients' to choose, so the label is bounded
(observability.metrics.Metrics.graphql_operation): unnamed operations are "anonymous"."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

from strawberry.extensions import SchemaExtension

from adaptive_engine.server.observability.metrics import OTHER

# GraphQL's own rule for names; a longer or stranger name (a provided operationName is any string) is "other".
_NAME = re.compile(r"[_A-Za-z][_0-9A-Za-z]{0,63}")


class OperationMetrics(SchemaExtension):
    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        failed = True
        try:
            yield
            result = self.execution_context.result
            failed = bool(getattr(result, "errors", None) or self.execution_context.pre_execution_errors)
        finally:
            self._record(time.perf_counter() - started, failed)

    def _record(self, seconds: float, failed: bool) -> None:
        platform = getattr(self.execution_context.context, "platform", None)
        if platform is None:
            return
        metrics = platform.metrics
        context = self.execution_context
        name = context.operation_name
        try:
            kind = context.operation_type.value if context.graphql_document is not None else "unknown"
        except Exception:  # an unknown operationName: no type to tell
            kind = "unknown"
        if name is not None and not _NAME.fullmatch(name):
            label = OTHER
        else:
            label = metrics.graphql_operation(name)
        metrics.graphql_requests(label, kind, "error" if failed else "ok").inc()
        metrics.graphql_duration(label, kind).observe(seconds)
