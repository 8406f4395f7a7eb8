"""create_app(): lifespan, the /v1 router assembled from the resource routers, error handlers."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import APIRouter, Depends, FastAPI
from fastapi.telemetry import TelemetryConfig

from app.agent_loop.cassettes.endpoints import router as cassettes_router
from app.agent_loop.cassettes.transport import cassette_library
from app.agents.endpoints import FAST_READS as agent_reads
from app.agents.endpoints import router as agents_router
from app.api.auth import KeyCache, require_api_key_off_loopback
from app.api.body import BodyGuard, BodyLimits
from app.api.errors import install_error_handlers
from app.api.fastpath import FastReads
from app.api.guard import v1_checks
from app.api.health import router as health_router
from app.api.middleware import RequestIdMiddleware
from app.api.openapi import install_openapi
from app.api.ratelimit import RateLimiter
from app.api.sse import OpenStreams
from app.catalog.endpoints import router as catalog_router
from app.config import Settings, get_settings
from app.console.endpoints import router as console_router
from app.db import migrate
from app.db.engine import Database
from app.db.peers import SqlitePeers
from app.deployments.endpoints import router as deployments_router
from app.deployments.endpoints import runs_router as deployment_runs_router
from app.deployments.scheduler import start_scheduler
from app.dreams.endpoints import router as dreams_router
from app.environments.endpoints import FAST_READS as environment_reads
from app.environments.endpoints import router as environments_router
from app.envkeys.endpoints import router as envkeys_router
from app.events import service as events
from app.events.notifier import LogEvent, Notifier
from app.events.pg_listener import PgListener
from app.events.sqlite_channel import SqliteChannel
from app.files.endpoints import router as files_router
from app.files.sweeper import StorageSweeper
from app.memory_stores.endpoints import router as memory_stores_router
from app.observability import metrics, tracing
from app.observability.endpoints import router as metrics_router
from app.observability.readiness import Readiness, sync_probe
from app.offline.endpoints import OfflineState
from app.offline.endpoints import router as offline_router
from app.sessions import repositories
from app.sessions import service as sessions_service
from app.sessions.endpoints import FAST_READS as session_reads
from app.sessions.endpoints import FAST_STREAMS, events_router, threads_router
from app.sessions.endpoints import router as sessions_router
from app.shared.loops import LoopService
from app.skills.endpoints import router as skills_router
from app.storage.blobs import LocalDiskBackend
from app.vaults.endpoints import router as vaults_router
from app.vaults.secrets import SecretBox
from app.webhooks.dispatcher import start_dispatcher
from app.webhooks.endpoints import router as webhooks_router
from app.work.endpoints import router as work_router
from app.worker.runtime import start_worker
from app.worker.service import Worker

log = logging.getLogger("mas")


async def start_fanout(stack: AsyncExitStack, db: Database, notifier: Notifier) -> PgListener | None:
    """Across processes on PostgreSQL: LISTEN/NOTIFY. On a SQLite file: each process announces
    itself in a file and binds a socket next to it, and the processes tell each other what they
    commit through those sockets (`SqliteChannel`). An in-memory SQLite database has one process."""

    async def fetch(session_id: str, after: int) -> list[LogEvent]:
        async with db.read() as session:
            return await events.fetch_after(session, session_id, after)

    if db.is_sqlite:
        if db.sqlite_file is not None:
            peers = SqlitePeers(db.sqlite_file)
            notifier.peers = peers
            channel = SqliteChannel(peers, notifier, fetch)
            channel.start()
            stack.push_async_callback(channel.close)
        return None
    listener = PgListener(db.url, notifier, fetch)
    await listener.start()
    stack.push_async_callback(listener.close)
    return listener


def readiness_of(
    settings: Settings,
    db: Database,
    listener: PgListener | None,
    worker: Worker | None,
    services: list[LoopService],
) -> Readiness:
    """What `/ready` checks in this process: the database always; the others where they run; and
    each enabled loop service by its name (one whose loop stopped or ended does no work)."""
    readiness = Readiness()
    readiness.add("database", lambda: migrate.schema_problem(db))
    if listener is not None:
        readiness.add("listener", sync_probe(listener.problem))
    if worker is not None:
        readiness.add("worker", sync_probe(worker.problem))
        if settings.sandbox_backend == "docker":
            readiness.add("docker", worker.deps.sandbox.probe)
    for service in services:
        if service.enabled and service is not worker:  # the worker's loop is `worker`
            readiness.add(service.name, sync_probe(service.problem))
    return readiness


def body_limits(settings: Settings) -> BodyLimits:
    """The global request-size limit, and the routes that take larger uploads."""
    upload_overhead = 1024 * 1024  # multipart headers and boundaries

    def upload(content_bytes: int) -> int:
        return max(settings.max_request_bytes, content_bytes + upload_overhead)

    routes = {
        "/v1/skills": upload(settings.skills_max_upload_bytes),
        "/v1/files": upload(settings.files_max_bytes),
    }
    return BodyLimits(default=settings.max_request_bytes, routes=routes)


FAST_READS = agent_reads + environment_reads + session_reads


def build_v1_router() -> APIRouter:
    """The /v1 API: every resource router, all behind authentication (API keys; the scoped worker
    credentials of `app.api.scopes`) and rate limits."""
    router = APIRouter(prefix="/v1", dependencies=[Depends(v1_checks)])
    # Matched in this order, route by route: the routes every session's client calls first (no
    # two routers share a first path segment, so the order decides nothing else).
    router.include_router(sessions_router)
    router.include_router(events_router)
    router.include_router(threads_router)
    router.include_router(agents_router)
    router.include_router(environments_router)
    router.include_router(envkeys_router)
    router.include_router(work_router)
    router.include_router(webhooks_router)
    router.include_router(skills_router)
    router.include_router(files_router)
    router.include_router(memory_stores_router)
    router.include_router(dreams_router)
    router.include_router(catalog_router)
    router.include_router(vaults_router)
    router.include_router(cassettes_router)
    router.include_router(deployments_router)
    router.include_router(deployment_runs_router)
    return router


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if settings.auto_migrate:
            await migrate.upgrade_async(settings.database_url, settings.storage_dir)
        async with AsyncExitStack() as stack:
            stack.callback(metrics.process_exited, settings.prometheus_multiproc_dir)
            tracing.configure(settings.otlp_endpoint, "mas", settings.trace_sample_ratio)
            stack.callback(tracing.shutdown)
            db = Database(settings.database_url, settings.database_pool_size)
            stack.push_async_callback(db.dispose)
            notifier = Notifier()
            db.on_wake = notifier.wake  # a commit that queued work wakes its services everywhere
            app.state.db = db
            app.state.notifier = notifier
            app.state.blobs = blobs = LocalDiskBackend(settings.storage_dir)
            app.state.repo_sealer = repositories.sealer(app.state.secret_box)
            sweeper = StorageSweeper(db, blobs, settings.storage_sweep_seconds)
            await sweeper.start()
            stack.push_async_callback(sweeper.stop)
            listener = await start_fanout(stack, db, notifier)
            # This process's loop services, by name (what runs, and how often it ran: tests/test_idle).
            services: list[LoopService] = [sweeper, *(listener.services() if listener else [])]
            services.append(await start_dispatcher(stack, settings, db, notifier))
            services.append(await start_scheduler(stack, settings, db, notifier))
            worker = None
            if settings.embedded_worker:
                worker = await start_worker(stack, settings, db, notifier, app.state.cassettes, services)
                app.state.worker = worker
            app.state.services = {service.name: service for service in services}
            app.state.readiness = readiness_of(settings, db, listener, worker, services)
            yield

    # FastAPI's own telemetry stays off: mas's middleware makes the request spans (one middleware).
    telemetry: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}
    app = FastAPI(
        title="mas — Managed Agents Server", version="0.1.0", lifespan=lifespan, telemetry=telemetry
    )
    app.state.settings = settings
    app.state.key_cache = KeyCache()
    app.state.rate_limiter = RateLimiter()
    app.state.streams = OpenStreams()  # ended at once when `mas serve` is told to stop
    app.state.session_loader = sessions_service.load  # the scope checks' (`app.api.scopes`)
    app.state.secret_box = SecretBox.from_settings(settings)
    app.state.offline = OfflineState.from_settings(settings)
    app.state.cassettes = cassette_library(settings)
    # Outermost last: the request id first, then the body guard, both before any route or key check.
    app.add_middleware(BodyGuard, limits=body_limits(settings))
    # The hot reads and the session stream, before the body guard (they take no body) and
    # FastAPI's router.
    app.add_middleware(FastReads, routes=FAST_READS, state=app.state, streams=FAST_STREAMS)
    app.add_middleware(RequestIdMiddleware, metrics=settings.metrics_enabled, access_log=settings.access_log)
    install_error_handlers(app)
    app.include_router(health_router)
    if settings.metrics_enabled:
        app.include_router(metrics_router)
    app.include_router(console_router)
    # The offline Messages API: no mas API key needed while mas listens on loopback only.
    app.include_router(offline_router, dependencies=[Depends(require_api_key_off_loopback)])
    app.include_router(build_v1_router())
    install_openapi(app)
    return app
