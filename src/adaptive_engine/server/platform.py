"""The typed composition root: every long-lived object of the server with its real type, built once by
``create_app`` (server/app.py). GraphQL resolvers reach it as ``info.context.platform``, REST routes and middleware
through ``platform_of(request)``; background services are given what they need of it when they are built.

The FastAPI app keeps it as ``app.state`` (a Platform, not a bag of attributes): :func:`platform_of` is the typed
way to it. This module imports the types it names only for type checking, so any layer may import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import HTTPConnection

from adaptive_engine.server.db.session import LazySession

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry
    from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

    from adaptive_engine.server.auth.cache import AuthCache
    from adaptive_engine.server.config import Settings
    from adaptive_engine.server.db.refs import RefCache
    from adaptive_engine.server.domains.ab_tests.evaluator import AbTestEvaluator
    from adaptive_engine.server.domains.ab_tests.routing import AbRouter
    from adaptive_engine.server.domains.datasets.from_traffic import DatasetBuilds
    from adaptive_engine.server.domains.graders.grading import GradingService
    from adaptive_engine.server.domains.graders.online import OnlineGradingService
    from adaptive_engine.server.domains.interactions.ingest import IngestWriter
    from adaptive_engine.server.domains.recipes.builtin import BuiltinRecipes
    from adaptive_engine.server.domains.usage.limits import UsageLimiter
    from adaptive_engine.server.housekeeping import HousekeepingService
    from adaptive_engine.server.inference.manager import InferenceManager
    from adaptive_engine.server.jobs.runner import JobRunner
    from adaptive_engine.server.jobs.storage import FileStore
    from adaptive_engine.server.notify.sender import Notifier
    from adaptive_engine.server.observability.metrics import Metrics
    from adaptive_engine.server.observability.tracing import LlmTracer
    from adaptive_engine.server.outbound import OutboundGuard
    from adaptive_engine.server.periodic import Service
    from adaptive_engine.server.rest.json_input import JsonLimits
    from adaptive_engine.server.sandbox import Sandbox


@dataclass(eq=False)
class Platform:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    file_store: FileStore
    # The policy of every outbound call to a URL users register (server/outbound.py).
    outbound: OutboundGuard
    # Registry rows the data plane reads on every request, cached briefly; and the callers behind API keys.
    refs: RefCache
    auth_cache: AuthCache | None
    ingest: IngestWriter
    # Where user code runs (recipe probes, local jobs, custom graders).
    sandbox: Sandbox
    inference: InferenceManager
    ab_router: AbRouter
    ab_tests: AbTestEvaluator
    job_runner: JobRunner
    grading: GradingService
    online_grading: OnlineGradingService
    builtin_recipes: BuiltinRecipes
    events: Notifier
    housekeeping: HousekeepingService
    dataset_builds: DatasetBuilds
    metrics_registry: CollectorRegistry
    # The server's Prometheus series on that registry (observability/metrics.py).
    metrics: Metrics
    # How deep and how large a request's JSON may be (rest/json_input.py).
    json_limits: JsonLimits
    # Rate limits, budgets and API-key scope of the data plane (domains/usage/limits.py).
    limits: UsageLimiter
    # Spans of LLM calls (observability/tracing.py); None unless ADAPTIVE_OPENTELEMETRY is on.
    llm_tracer: LlmTracer | None = None
    # Started in this order, stopped in reverse (see app.py).
    services: list[Service] = field(default_factory=list)
    ready: bool = False

    def request_session(self) -> AsyncSession:
        """A session for one request, opened on first use (many requests are answered from caches alone)."""
        return LazySession(self.sessionmaker)  # type: ignore[return-value]  # an AsyncSession to every caller


def platform_of(source: HTTPConnection | Starlette) -> Platform:
    """The platform of a request (or of the app itself)."""
    app = source.app if isinstance(source, HTTPConnection) else source
    platform = app.state
    if not isinstance(platform, Platform):
        raise RuntimeError("the app was not made by create_app")
    return platform
