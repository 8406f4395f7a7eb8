"""Starts a session's sandbox as soon as the session is created (so the first tool call does not
wait), removes it when the session is deleted, and reaps sandboxes of sessions that are gone."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from app.agent_loop import memory, repositories
from app.agent_loop.deps import LoopDeps
from app.agent_loop.tool_step import egress_secrets, mounted_files, sandbox_spec
from app.environments import service as environments
from app.sandbox.interface import SandboxError, SandboxSpec
from app.sessions import resources
from app.sessions import service as sessions
from app.skills import references as skill_refs

log = logging.getLogger(__name__)


class Provisioner:
    def __init__(self, deps: LoopDeps) -> None:
        self.deps = deps
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def prewarm(self) -> None:
        """Warm sandboxes of the default environment (no packages, unrestricted networking)."""
        self._spawn(self._prewarm(), "sandbox-prewarm")

    async def _prewarm(self) -> None:
        try:
            await self.deps.sandbox.prewarm(SandboxSpec(env_id=""))
        except SandboxError as error:
            log.warning("could not warm sandboxes: %s", error)

    def session_created(self, session_id: str) -> None:
        self._spawn(self._ensure(session_id), f"provision-{session_id}")

    def session_deleted(self, session_id: str) -> None:
        self._spawn(self._remove(session_id), f"deprovision-{session_id}")

    async def _ensure(self, session_id: str) -> None:
        async with self.deps.database.read() as db:
            row = await sessions.load(db, session_id)
            config = await environments.sandbox_config(db, row.environment_id)
            files = await mounted_files(db, self.deps, row)
            repos = repositories.jobs(row, self.deps.settings.github_base_url, self.deps.unseal)
            listed = await skill_refs.describe(db, row.agent.get("skills") or [])
            mounted = resources.memory_mounts(row)
            secrets = await egress_secrets(db, self.deps.mcp.box, list(row.vault_ids))
        if config.get("type") == "self_hosted":
            return
        spec = sandbox_spec(row.environment_id, config, row.agent, memory.sandbox_mounts(mounted), secrets)
        try:
            await self.deps.sandbox.ensure(session_id, spec, self._progress(session_id))
            await self.deps.sandbox.sync_files(session_id, files)
            await self.deps.memory.place(self.deps.sandbox, session_id, mounted)
            # Cloned ahead of the first tool call; failures are reported by the tool step.
            await self.deps.repos.mount(self.deps.sandbox, session_id, repos, report=False)
            await self.deps.skills.mount(self.deps.sandbox, session_id, listed)
        except (SandboxError, OSError) as error:
            # Reported to the session when a tool first needs the sandbox (tool_step).
            log.warning("session %s: sandbox not ready: %s", session_id, str(error)[:500])

    def _progress(self, session_id: str) -> Callable[[str], Awaitable[None]]:
        async def report(line: str) -> None:
            log.info("session %s sandbox: %s", session_id, line.rstrip())

        return report

    async def _remove(self, session_id: str) -> None:
        self.deps.outputs.forget(session_id)
        await self.deps.repos.forget(session_id)
        self.deps.skills.forget(session_id)
        self.deps.memory.forget(session_id)
        try:
            await self.deps.sandbox.remove(session_id)
        except SandboxError:
            log.exception("session %s: could not remove its sandbox", session_id)

    async def reap(self, live_session_ids: set[str]) -> int:
        return await self.deps.sandbox.reap_orphans(live_session_ids)

    async def close(self) -> None:
        """Finish removals (a deleted session's sandbox must not outlive it); cancel the rest."""
        removals = [t for t in self._tasks if t.get_name().startswith("deprovision-")]
        if removals:
            await asyncio.wait(removals, timeout=30)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
