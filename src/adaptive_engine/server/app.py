"""create_app(settings): the server, with its database, services and routes on app.state."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from adaptive_engine.server.auth.cache import AuthCache
from adaptive_engine.server.auth.scrape import METRICS_PATH, require_metrics_reader
from adaptive_engine.server.connections import BodyReadTimeoutMiddleware
from adaptive_engine.server.datadir_lock import DataDirLock
from adaptive_engine.server.db.refs import RefCache
from adaptive_engine.server.notify.sender import Notifier, notifier_settings
from adaptive_engine.server.config import Settings
from adaptive_engine.server.console import ConsoleMiddleware
from adaptive_engine.server.db.engine import create_engine, create_sessionmaker, upgrade
from adaptive_engine.server.db.session import unit_of_work
from adaptive_engine.server.domains.ab_tests.evaluator import install as install_ab_tests
from adaptive_engine.server.domains.graders.grading import GradingService
from adaptive_engine.server.domains.graders.inference_bridge import text_generator_for
from adaptive_engine.server.domains.graders.online import OnlineGradingService
from adaptive_engine.server.domains.identity.service import ADMIN_KEY_FILE, bootstrap
from adaptive_engine.server.domains.interactions.ingest import IngestWriter
from adaptive_engine.server.housekeeping import HousekeepingService
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.input_check import GraphQLRouter
from adaptive_engine.server.graphql.schema import build_schema
from adaptive_engine.server.inference.manager import InferenceManager
from adaptive_engine.server.domains.recipes.builtin import BuiltinRecipes
from adaptive_engine.server.jobs.runner import JobRunner
from adaptive_engine.server.jobs.storage import FileStore
from adaptive_engine.server.middleware import (
    AuthMiddleware,
    BodySizeLimitMiddleware,
    LastResortMiddleware,
    MetricsMiddleware,
    SessionScopeMiddleware,
)
from adaptive_engine.server.outbound import OutboundGuard
from adaptive_engine.server.rest.errors import install_error_handlers
from adaptive_engine.server.rest.json_input import limits_of
from adaptive_engine.server.rest.json_route import JsonRouteShortcut
from adaptive_engine.server.rest.openapi import install_openapi
from adaptive_engine.server.rest.router import api_router

log = logging.getLogger("adaptive_engine")
# Routes that stream their body to disk with limits of their own (dataset parts, job artifacts, models).
STREAMED_UPLOADS = re.compile(r"/api/v1/(upload/part|jobs/[^/]+/artifacts|jobs/[^/]+/models/upload)")


async def graphql_context(request: Request) -> AsyncIterator[Context]:
    # Served completions are queued, not awaited: what this process accepted is written before any read.
    ingest = getattr(request.app.state, "ingest", None)
    if ingest is not None:
        await ingest.barrier()
    async with request.app.state.sessionmaker() as session:
        yield Context(session=session, principal=request.state.principal, state=request.app.state)


def create_app(settings: Settings | None = None, data_dir_lock: DataDirLock | None = None) -> FastAPI:
    """``data_dir_lock``: the data dir's lock when the caller took it already (``serve`` does, before any
    start-up work); otherwise start-up takes it first, and releases it at shutdown."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Before anything touches the data dir or the database: a second server on it refuses here.
        own_lock = None if data_dir_lock is not None and data_dir_lock.held else DataDirLock.acquire(
            settings.data_dir, f"{settings.host}:{settings.port}")
        try:
            async with _started(app) as started:
                yield started
        finally:
            if own_lock is not None:
                own_lock.release()

    @asynccontextmanager
    async def _started(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.resolved_database_url)
        await upgrade(engine)
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        async with unit_of_work(app.state.sessionmaker) as session:
            result = await bootstrap(session, settings.data_dir, settings.admin_api_key)
        if result.generated_key:
            # Printed once, on the first start; stored hashed, and in a 0600 file for the operator.
            print(
                f"\nAdmin API key (shown once; also in {settings.data_dir / ADMIN_KEY_FILE}):\n"
                f"    {result.generated_key}\n",
                flush=True,
            )
        # Long-lived services start in order and stop in reverse.
        for service in app.state.services:
            await service.start(app)
        app.state.ready = True
        try:
            yield
        finally:
            app.state.ready = False
            for service in reversed(app.state.services):
                await service.stop()
            await engine.dispose()

    otel = settings.opentelemetry
    app = FastAPI(title="Adaptive Engine", lifespan=lifespan, docs_url=None, redoc_url=None,
                  telemetry={"tracing": otel, "metrics": otel, "logs": otel})
    app.state.settings = settings
    app.state.file_store = FileStore(settings.resolved_files_dir)
    app.state.job_runner = JobRunner()
    app.state.ready = False
    # The policy of every outbound call to a URL users register (server/outbound.py).
    app.state.outbound = OutboundGuard(settings.allow_private_networks)
    # Objects with `async start(app)` / `async stop()`; domains append theirs here.
    app.state.refs = RefCache(settings.registry_cache_seconds)
    app.state.auth_cache = AuthCache(settings.auth_cache_seconds) if settings.auth_cache_seconds > 0 else None
    app.state.services = []
    app.state.services.append(IngestWriter())
    app.state.inference = InferenceManager(settings)
    app.state.services.append(app.state.inference)
    install_ab_tests(app)
    app.state.services.append(app.state.job_runner)
    app.state.grading = GradingService(lambda: text_generator_for(app.state), guard=app.state.outbound)
    app.state.online_grading = OnlineGradingService(settings.online_grading_interval_s)
    app.state.services.append(app.state.online_grading)
    app.state.services.append(BuiltinRecipes())
    app.state.events = Notifier(notifier_settings(settings))
    app.state.services.append(app.state.events)
    app.state.housekeeping = HousekeepingService(settings)
    app.state.services.append(app.state.housekeeping)
    registry = CollectorRegistry()
    app.state.metrics_registry = registry

    install_error_handlers(app)
    install_openapi(app)

    @app.get("/health")
    async def health() -> JSONResponse:
        if not app.state.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get(METRICS_PATH)
    async def metrics(request: Request) -> Response:
        if not getattr(request.state, "metrics_scraper", False):
            require_metrics_reader(request.state.principal)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # The data plane first: routes are matched in order, and it carries the traffic.
    app.include_router(api_router)
    graphql = GraphQLRouter(build_schema(settings), context_getter=graphql_context, multipart_uploads_enabled=True,
                            limits=limits_of(app.state))
    app.include_router(graphql, prefix="/api/graphql")

    # Each one added wraps those before it (the last is outermost): metrics see every request, auth runs
    # before the size check reads the body, the JSON-route shortcut sits next to the routes, and the last
    # resort answers what escaped everything else.
    app.add_middleware(JsonRouteShortcut)
    app.add_middleware(SessionScopeMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes, streamed=STREAMED_UPLOADS)
    app.add_middleware(AuthMiddleware)
    app.add_middleware(BodyReadTimeoutMiddleware, timeout_s=settings.request_body_timeout_s)
    app.add_middleware(ConsoleMiddleware, folder=settings.console_dir)  # outside auth: its files are public
    app.add_middleware(MetricsMiddleware, registry=registry)
    app.add_middleware(LastResortMiddleware)
    return app
