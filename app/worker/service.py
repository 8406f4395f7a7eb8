"""The worker: claims runnable sessions with leases and runs them, many at once.

It runs embedded in `mas serve` or alone as `mas worker`. Sessions become runnable when clients
send work (`wake_at`), when a retry backoff ends, or when a lease expires because its worker died;
a claim takes a lease with a fencing token that every later write checks. Wake-ups arrive through
the notifier (in-process, or `NOTIFY` across processes); a poll is the safety net.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from datetime import timedelta

from app.agent_loop.deps import LoopDeps
from app.agent_loop.runner import SessionRunner
from app.db.base import utcnow
from app.sessions import leases
from app.sessions.leases import Claim, LeaseLost

log = logging.getLogger(__name__)

CRASH_BACKOFF_SECONDS = 5.0


class Worker:
    def __init__(self, deps: LoopDeps) -> None:
        self.deps = deps
        self.settings = deps.settings
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._running: dict[str, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        self._loop_task = asyncio.create_task(self._claim_loop(), name="worker-claims")
        log.info("worker %s started (concurrency %d)", self.owner, self.settings.worker_concurrency)

    async def stop(self) -> None:
        """Stop claiming, cancel running sessions; their leases lapse and another worker resumes them."""
        self._stopping = True
        tasks = [t for t in [self._loop_task, *self._running.values()] if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _claim_loop(self) -> None:
        while not self._stopping:
            try:
                await self._claim_once()
            except Exception:
                log.exception("claiming sessions failed")
            await self.deps.notifier.wait_for_wake(self.settings.worker_poll_seconds)

    async def _claim_once(self) -> None:
        free = self.settings.worker_concurrency - len(self._running)
        if free <= 0:
            return
        async with self.deps.database.unit_of_work() as db:
            claims = await leases.claim(db, self.owner, self.settings.worker_lease_seconds, free)
        for claim in claims:
            self._running[claim.session_id] = asyncio.create_task(
                self._run(claim), name=f"session-{claim.session_id}"
            )

    async def _run(self, claim: Claim) -> None:
        renewing = asyncio.create_task(self._renew(claim, asyncio.current_task()))
        try:
            await SessionRunner(self.deps, claim).run()
        except LeaseLost:
            log.warning("session %s: lease lost; another worker owns it now", claim.session_id)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("session %s: the agent loop failed; retrying later", claim.session_id)
            await self._release_after_crash(claim)
        finally:
            renewing.cancel()
            self._running.pop(claim.session_id, None)
            if not self._stopping:
                self.deps.notifier.wake(forward=False)  # a slot is free: look for more work

    async def _renew(self, claim: Claim, runner: asyncio.Task[None] | None) -> None:
        interval = self.settings.worker_lease_seconds / 3
        while True:
            await asyncio.sleep(interval)
            async with self.deps.database.unit_of_work() as db:
                kept = await leases.renew(db, claim, self.settings.worker_lease_seconds)
            if not kept and runner is not None:
                log.warning("session %s: lease could not be renewed; stopping", claim.session_id)
                runner.cancel()
                return

    async def _release_after_crash(self, claim: Claim) -> None:
        with contextlib.suppress(LeaseLost):
            async with self.deps.database.unit_of_work() as db:
                row = await leases.fence(db, claim)
                leases.release(row, utcnow() + timedelta(seconds=CRASH_BACKOFF_SECONDS))
