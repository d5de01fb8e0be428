"""create_app(settings): the server, with its platform (database, services: server/platform.py) and routes."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from adaptive_engine.server.auth.cache import AuthCache
from adaptive_engine.server.auth.scrape import METRICS_PATH, require_metrics_reader
from adaptive_engine.server.config import Settings
from adaptive_engine.server.connections import BodyReadTimeoutMiddleware
from adaptive_engine.server.console import ConsoleMiddleware
from adaptive_engine.server.datadir_lock import DataDirLock
from adaptive_engine.server.db.engine import create_engine, create_sessionmaker, upgrade
from adaptive_engine.server.db.refs import RefCache
from adaptive_engine.server.db.session import unit_of_work
from adaptive_engine.server.domains.ab_tests.evaluator import (
    AbTestEvaluator,
    stats_config,
)
from adaptive_engine.server.domains.ab_tests.routing import AbRouter
from adaptive_engine.server.domains.compute_pools.service import (
    detect_machine,
    ensure_pools,
)
from adaptive_engine.server.domains.datasets.from_traffic import DatasetBuilds
from adaptive_engine.server.domains.graders.grading import GradingService
from adaptive_engine.server.domains.graders.inference_bridge import ManagerGenerator
from adaptive_engine.server.domains.graders.online import OnlineGradingService
from adaptive_engine.server.domains.identity.service import ADMIN_KEY_FILE, bootstrap
from adaptive_engine.server.domains.interactions.ingest import IngestWriter
from adaptive_engine.server.domains.jobs.states import JobTransitions
from adaptive_engine.server.domains.recipes.builtin import BuiltinRecipes
from adaptive_engine.server.domains.usage.limits import UsageLimiter
from adaptive_engine.server.graphql.context import Context
from adaptive_engine.server.graphql.input_check import GraphQLRouter
from adaptive_engine.server.graphql.schema import build_schema
from adaptive_engine.server.housekeeping import HousekeepingService
from adaptive_engine.server.inference.manager import InferenceManager
from adaptive_engine.server.jobs.runner import JobRunner
from adaptive_engine.server.jobs.storage import FileStore
from adaptive_engine.server.middleware import (
    AuthMiddleware,
    BodySizeLimitMiddleware,
    LastResortMiddleware,
    ObservabilityMiddleware,
    SessionScopeMiddleware,
)
from adaptive_engine.server.notify.sender import Notifier, notifier_settings
from adaptive_engine.server.observability.logs import announce as announce_to_operator
from adaptive_engine.server.observability.metrics import Metrics
from adaptive_engine.server.observability.tracing import LlmTracer
from adaptive_engine.server.outbound import OutboundGuard
from adaptive_engine.server.periodic import cancel_task
from adaptive_engine.server.platform import Platform, platform_of
from adaptive_engine.server.readiness import announce_when_ready
from adaptive_engine.server.readiness import check as check_readiness
from adaptive_engine.server.rest.errors import install_error_handlers
from adaptive_engine.server.rest.json_input import JsonLimits
from adaptive_engine.server.rest.json_route import JsonRouteShortcut
from adaptive_engine.server.rest.openapi import install_openapi
from adaptive_engine.server.rest.router import api_router
from adaptive_engine.server.sandbox import Sandbox

log = logging.getLogger("adaptive_engine")
# Routes that stream their body to disk with limits of their own (dataset parts, job artifacts, models).
STREAMED_UPLOADS = re.compile(r"/api/v1/(upload/part|jobs/[^/]+/artifacts|jobs/[^/]+/models/upload)")


class _StartedWithApp:
    """The inference manager still takes the app at start (it reads the sessionmaker there)."""

    def __init__(self, service: InferenceManager, app: FastAPI) -> None:
        self.service = service
        self.app = app

    async def start(self) -> None:
        await self.service.start(self.app)

    async def stop(self) -> None:
        await self.service.stop()


def build_platform(settings: Settings, app: FastAPI) -> Platform:
    """Everything the server holds, wired once. Nothing here does I/O: the lifespan migrates the database and
    starts the services."""
    engine = create_engine(settings.resolved_database_url)
    sessionmaker = create_sessionmaker(engine)
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    store = FileStore(settings.resolved_files_dir)
    outbound = OutboundGuard(settings.allow_private_networks)
    refs = RefCache(settings.registry_cache_seconds)
    inference = InferenceManager(settings, metrics)
    ab_router = AbRouter()
    sandbox = Sandbox(settings)
    grading = GradingService(lambda: ManagerGenerator(inference, sessionmaker), guard=outbound, sandbox=sandbox)
    platform = Platform(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker,
        file_store=store,
        outbound=outbound,
        refs=refs,
        auth_cache=AuthCache(settings.auth_cache_seconds) if settings.auth_cache_seconds > 0 else None,
        ingest=IngestWriter(sessionmaker, refs, metrics),
        inference=inference,
        ab_router=ab_router,
        ab_tests=AbTestEvaluator(
            sessionmaker,
            stats_config(settings),
            settings.ab_test_evaluation_interval_s,
            on_change=ab_router.invalidate,
            metrics=metrics,
        ),
        sandbox=sandbox,
        job_runner=JobRunner(settings, sessionmaker, store, JobTransitions(metrics), sandbox),
        grading=grading,
        online_grading=OnlineGradingService(sessionmaker, grading, settings.online_grading_interval_s),
        builtin_recipes=BuiltinRecipes(settings, sessionmaker, store, sandbox),
        events=Notifier(sessionmaker, notifier_settings(settings), metrics),
        housekeeping=HousekeepingService(settings, sessionmaker, store),
        dataset_builds=DatasetBuilds(engine, sessionmaker, store),
        metrics_registry=registry,
        metrics=metrics,
        json_limits=JsonLimits(settings.max_json_depth, settings.max_json_items),
        limits=UsageLimiter(sessionmaker, settings.usage_cache_seconds, settings.redis_url, settings.redis_prefix),
        llm_tracer=LlmTracer(settings.opentelemetry_capture_content) if settings.opentelemetry else None,
    )
    platform.services = [
        # First: whatever runs user code (recipe probes of the built-ins, jobs, graders) needs its verdict.
        platform.sandbox,
        platform.ingest,
        platform.limits,
        _StartedWithApp(inference, app),
        platform.ab_tests,
        platform.job_runner,
        platform.online_grading,
        platform.builtin_recipes,
        platform.events,
        platform.housekeeping,
        platform.dataset_builds,
    ]
    return platform


async def graphql_context(request: Request) -> AsyncIterator[Context]:
    platform = platform_of(request)
    # Served completions are queued, not awaited: what this process accepted is written before any read.
    await platform.ingest.barrier()
    async with platform.sessionmaker() as session:
        yield Context(session=session, principal=request.state.principal, platform=platform)


def _tune_gc() -> None:
    """The garbage collector for a serving process, once started. What start-up built (torch, transformers,
    the app, its database metadata, schema and caches) lives as long as the process: it is moved out of the
    collector's passes (under request load, full passes came every few hundred milliseconds and walked all of
    it). Young passes wait for 10,000 new objects instead of 700: at 700, one ran every few requests and walked
    the objects of every request in flight. Under a logging load the collector took 8-16% of the event loop's
    time before this, under 4% after (bench/ingest_gc.py)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def create_app(
    settings: Settings | None = None,
    data_dir_lock: DataDirLock | None = None,
    announce: bool = False,
    tune_gc: bool = False,
) -> FastAPI:
    """``data_dir_lock``: the data dir's lock when the caller took it already (``serve`` does, before any
    start-up work); otherwise start-up takes it first, and releases it at shutdown. ``announce`` (``serve``):
    print where the admin key is, and ``ready: URL`` once ``/ready`` would say so. ``tune_gc`` (``serve``, the
    process's one app): the garbage collector is set for serving once started (:func:`_tune_gc`)."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Before anything touches the data dir or the database: a second server on it refuses here.
        own_lock = (
            None
            if data_dir_lock is not None and data_dir_lock.held
            else DataDirLock.acquire(settings.data_dir, f"{settings.host}:{settings.port}")
        )
        try:
            async with _started(app) as started:
                yield started
        finally:
            if own_lock is not None:
                own_lock.release()

    def say(message: str) -> None:
        announce_to_operator(message, json_format=settings.log_format == "json")

    @asynccontextmanager
    async def _started(app: FastAPI) -> AsyncIterator[None]:
        platform = platform_of(app)
        await upgrade(platform.engine)
        machine = await asyncio.to_thread(detect_machine)
        async with unit_of_work(platform.sessionmaker) as session:
            result = await bootstrap(session, settings.data_dir, settings.admin_api_key)
            # The compute pools this server runs jobs on, before the job runner looks at them.
            await ensure_pools(session, settings, machine)
        if result.generated_key and settings.log_format == "json":  # every line of a JSON log is JSON
            log.warning(
                "admin API key (shown once; also in %s): %s", settings.data_dir / ADMIN_KEY_FILE, result.generated_key
            )
        elif result.generated_key:
            # Printed once, on the first start; stored hashed, and in a 0600 file for the operator.
            say(
                f"\nAdmin API key (shown once; also in {settings.data_dir / ADMIN_KEY_FILE}):\n"
                f"    {result.generated_key}\n"
            )
        elif announce:
            where = (
                "ADAPTIVE_ADMIN_API_KEY"
                if settings.admin_api_key
                else f"{settings.data_dir / ADMIN_KEY_FILE} (written on the first start)"
            )
            say(f"Admin API key: {where}")
        for service in platform.services:
            await service.start()
        if tune_gc:
            _tune_gc()
        platform.ready = True
        announcer = (
            asyncio.create_task(announce_when_ready(platform, settings.resolved_callback_url, say))
            if announce
            else None
        )
        try:
            yield
        finally:
            await cancel_task(announcer)
            platform.ready = False
            for service in reversed(platform.services):
                await service.stop()
            await platform.engine.dispose()

    otel = settings.opentelemetry
    app = FastAPI(
        title="Adaptive Engine",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        telemetry={"tracing": otel, "metrics": otel, "logs": otel},
    )
    # The app's state is the platform itself (typed: platform_of); nothing else is kept on it.
    platform: Platform = build_platform(settings, app)
    app.state = platform  # type: ignore[assignment]
    registry = platform.metrics_registry

    install_error_handlers(app)
    install_openapi(app)

    @app.get("/health")
    async def health() -> JSONResponse:
        if not platform.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Whether the server can do its work: database migrated, job runner up, bundled models online."""
        readiness = await check_readiness(platform)
        return JSONResponse(readiness.as_json(), status_code=200 if readiness.ready else 503)

    @app.get(METRICS_PATH)
    async def metrics(request: Request) -> Response:
        if not getattr(request.state, "metrics_scraper", False):
            require_metrics_reader(request.state.principal)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    # The data plane first: routes are matched in order, and it carries the traffic.
    app.include_router(api_router)
    graphql = GraphQLRouter(
        build_schema(settings),
        context_getter=graphql_context,
        multipart_uploads_enabled=True,
        limits=platform.json_limits,
    )
    app.include_router(graphql, prefix="/api/graphql")

    # Each one added wraps those before it (the last is outermost): auth runs before the size check reads
    # the body, the JSON-route shortcut sits next to the routes, the last resort answers what escaped
    # everything else, and the request's id, metrics and access line cover every answer, the last resort's too.
    app.add_middleware(JsonRouteShortcut)
    app.add_middleware(SessionScopeMiddleware)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_request_bytes, streamed=STREAMED_UPLOADS)
    app.add_middleware(AuthMiddleware)
    app.add_middleware(BodyReadTimeoutMiddleware, timeout_s=settings.request_body_timeout_s)
    app.add_middleware(ConsoleMiddleware, folder=settings.console_dir)  # outside auth: its files are public
    app.add_middleware(LastResortMiddleware)
    app.add_middleware(ObservabilityMiddleware, metrics=platform.metrics, access_log=settings.log_format == "json")
    return app
