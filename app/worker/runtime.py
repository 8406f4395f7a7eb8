"""Assembling the worker: model client, sandbox backend, worker, provisioner (embedded or alone)."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from app.agent_loop.anthropic_client import create_model_client
from app.agent_loop.cassettes.transport import CassetteLibrary
from app.agent_loop.deps import LoopDeps
from app.config import Settings
from app.db.engine import Database
from app.events.notifier import Notifier
from app.mcp.hub import McpHub
from app.sandbox.factory import create_backend
from app.sessions import service as sessions
from app.vaults.secrets import SecretBox
from app.worker.provisioner import Provisioner
from app.worker.service import Worker

log = logging.getLogger(__name__)


def offline_base_url(settings: Settings) -> str:
    """Where the offline model is served: this server (or MAS_PUBLIC_URL for a separate worker)."""
    if settings.public_url:
        return settings.public_url.rstrip("/")
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::", "") else settings.host
    return f"http://{host}:{settings.port}"


async def start_worker(
    stack: AsyncExitStack,
    settings: Settings,
    db: Database,
    notifier: Notifier,
    cassettes: CassetteLibrary | None = None,
) -> Worker:
    model = create_model_client(settings, offline_base_url(settings), cassettes)
    stack.push_async_callback(model.aclose)
    sandbox = create_backend(settings)
    stack.push_async_callback(sandbox.close)
    mcp = McpHub(settings, db, SecretBox.from_settings(settings))
    mcp.start()
    notifier.listeners.append(mcp)
    stack.push_async_callback(mcp.close)
    deps = LoopDeps(settings=settings, database=db, notifier=notifier, model=model, sandbox=sandbox, mcp=mcp)
    provisioner = Provisioner(deps)
    notifier.listeners.append(provisioner)
    stack.push_async_callback(provisioner.close)
    await _reap(db, provisioner)
    provisioner.prewarm()
    worker = Worker(deps)
    await worker.start()
    stack.push_async_callback(worker.stop)
    return worker


async def _reap(db: Database, provisioner: Provisioner) -> None:
    try:
        async with db.read() as session:
            live = await sessions.live_ids(session)
        removed = await provisioner.reap(live)
        if removed:
            log.info("removed %d sandboxes of deleted sessions", removed)
    except Exception:
        log.exception("could not reap orphaned sandboxes")
