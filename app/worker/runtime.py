"""Assembling the worker: model client, sandbox backend, worker, provisioner (embedded or alone)."""

from __future__ import annotations

import functools
import logging
from contextlib import AsyncExitStack

from app.agent_loop.anthropic_client import AnthropicModelClient, create_cassette_client
from app.agent_loop.cassettes.transport import CassetteLibrary
from app.agent_loop.deps import LoopDeps
from app.agent_loop.memory import MemoryMounter
from app.agent_loop.metered import MeteredModelClient
from app.agent_loop.model_client import ModelClient
from app.agent_loop.repositories import RepoMounter
from app.agent_loop.skills import SkillMounter
from app.config import Settings
from app.db.engine import Database
from app.events.notifier import Notifier
from app.mcp.hub import McpHub
from app.offline.client import OfflineModelClient
from app.offline.engine import OfflineEngine
from app.sandbox.factory import create_backend
from app.sandbox.git import RepoCache
from app.sessions import service as sessions
from app.sessions.repositories import unsealer
from app.shared.loops import LoopService
from app.skills.bundle import Limits
from app.storage.blobs import LocalDiskBackend
from app.vaults.secrets import SecretBox
from app.worker.dreams import DreamRunner
from app.worker.provisioner import Provisioner
from app.worker.service import Worker

log = logging.getLogger(__name__)


def create_model_client(settings: Settings, cassettes: CassetteLibrary | None = None) -> ModelClient:
    """Cassettes in the record/replay modes, the real API when configured (see
    `Settings.resolved_model_backend`), else the offline model in process: a worker never needs
    an API process to reach its model."""
    if settings.cassette_mode() is not None:
        return create_cassette_client(settings, cassettes)
    if settings.resolved_model_backend() == "anthropic":
        return AnthropicModelClient(
            api_key=settings.anthropic_api_key,
            base_url=settings.anthropic_base_url,
            timeout_seconds=settings.model_timeout_seconds,
        )
    engine = OfflineEngine(script_path=settings.offline_script, script_dir=settings.offline_script_dir)
    return OfflineModelClient(engine)


async def start_worker(
    stack: AsyncExitStack,
    settings: Settings,
    db: Database,
    notifier: Notifier,
    cassettes: CassetteLibrary | None = None,
    services: list[LoopService] | None = None,
) -> Worker:
    """Start the worker and what it needs; its loop services are added to ``services``."""
    model = MeteredModelClient(create_model_client(settings, cassettes))
    stack.push_async_callback(model.aclose)
    sandbox = create_backend(settings)
    stack.push_async_callback(sandbox.close)
    mcp = McpHub(settings, db, SecretBox.from_settings(settings))
    await mcp.start()
    notifier.listeners.append(mcp)
    stack.push_async_callback(mcp.close)
    blobs = LocalDiskBackend(settings.storage_dir)
    skill_limits = Limits(max_bytes=settings.skills_max_upload_bytes, max_files=settings.skills_max_files)
    checkouts = settings.storage_dir / "checkouts"
    repos = RepoMounter(RepoCache(settings.storage_dir / "git"), checkouts, skill_limits)
    skills = SkillMounter(db, blobs, settings.storage_dir / "checkouts")
    memory = MemoryMounter(db)
    # A sandbox stopping (idle, deleted, reaped) has its memory mounts synced a last time.
    sandbox.on_stopped(functools.partial(memory.flush, sandbox))
    deps = LoopDeps(
        settings=settings,
        database=db,
        notifier=notifier,
        model=model,
        sandbox=sandbox,
        mcp=mcp,
        blobs=blobs,
        repos=repos,
        skills=skills,
        memory=memory,
        unseal=unsealer(SecretBox.from_settings(settings)),
    )
    provisioner = Provisioner(deps)
    notifier.listeners.append(provisioner)
    stack.push_async_callback(provisioner.close)
    await _reap(db, provisioner)
    provisioner.prewarm()
    worker = Worker(deps)
    await worker.start()
    stack.push_async_callback(worker.stop)
    dream_runner = DreamRunner(db, model, settings, notifier)
    await dream_runner.start()
    stack.push_async_callback(dream_runner.stop)
    if services is not None:
        services += [worker, dream_runner, mcp.reaper, *sandbox.services()]
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
