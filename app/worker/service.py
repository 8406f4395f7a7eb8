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
from datetime import datetime, timedelta

from opentelemetry.context import Context

from app.agent_loop.deps import LoopDeps
from app.agent_loop.ledger import Ledgers
from app.agent_loop.runner import SessionRunner
from app.db.base import utcnow
from app.observability import tracing
from app.observability.context import session_id_var, worker_id_var
from app.observability.metrics import WORKER_LEASES
from app.sessions import leases
from app.sessions import service as sessions
from app.sessions.leases import Claim, LeaseLost
from app.worker.slots import Slot, Slots

log = logging.getLogger(__name__)

CRASH_BACKOFF_SECONDS = 5.0
STOP_GRACE_SECONDS = 10.0


class Worker:
    def __init__(self, deps: LoopDeps) -> None:
        self.deps = deps
        self.settings = deps.settings
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._running: dict[str, asyncio.Task[None]] = {}
        self._runners: dict[str, SessionRunner] = {}
        self.ledgers = Ledgers(self.settings.worker_ledgers)
        self._slots = Slots(self.settings.worker_concurrency, lambda: deps.notifier.wake(forward=False))
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self) -> None:
        worker_id_var.set(self.owner)  # inherited by the claim loop and every session it runs
        self._loop_task = asyncio.create_task(self._claim_loop(), name="worker-claims")
        log.info("worker %s started (concurrency %d)", self.owner, self.settings.worker_concurrency)

    def running_sessions(self) -> set[str]:
        """The sessions this worker runs right now."""
        return set(self._running)

    def problem(self) -> str | None:
        """Why this worker claims no work (readiness), or None."""
        task = self._loop_task
        if self._stopping:
            return "stopping"
        if task is None:
            return "not started"
        if task.done():
            error = None if task.cancelled() else task.exception()
            return f"its claim loop ended ({error!r})" if error else "its claim loop ended"
        return None

    async def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        """Stop gracefully: claim nothing more, let each running session finish its current step
        (for up to `grace_seconds`, then cancel it), and hand every lease back at once, so another
        worker resumes those sessions now rather than when the leases expire."""
        self._stopping = True
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
        for runner in self._runners.values():
            runner.stop_after_step()
        running = list(self._running.values())
        if running:
            _, late = await asyncio.wait(running, timeout=grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _claim_loop(self) -> None:
        while not self._stopping:
            try:
                await self._claim_once()
            except Exception:
                log.exception("claiming sessions failed")
            await self.deps.notifier.wait_for_wake(self.settings.worker_poll_seconds)

    async def _claim_once(self) -> None:
        # Sessions waiting on tools hold no slot; how many may wait is bounded on its own.
        limit = self.settings.worker_concurrency + self.settings.worker_tool_waits
        free = min(self._slots.free(), limit - len(self._running))
        if free <= 0:
            return
        async with self.deps.database.unit_of_work() as db:
            claims = await leases.claim(db, self.owner, self.settings.worker_lease_seconds, free)
        for claim in claims:
            slot = self._slots.claim()
            self._running[claim.session_id] = asyncio.create_task(
                self._run(claim, slot), name=f"session-{claim.session_id}"
            )

    async def _run(self, claim: Claim, slot: Slot) -> None:
        session_id_var.set(claim.session_id)  # this task's log lines, and its child tasks'
        renewing = asyncio.create_task(self._renew(claim, asyncio.current_task()))
        runner = self._runners[claim.session_id] = SessionRunner(self.deps, claim, self.ledgers)
        WORKER_LEASES.inc()
        runner.tool_step.lend_slot = slot.lent
        try:
            attributes = {"mas.session_id": claim.session_id, "mas.worker_id": self.owner}
            with tracing.span("mas.turn", attributes, parent=await self._trace_parent(claim)):
                await runner.run()
            if runner.left_work:
                await self._release(claim, utcnow())
            runner.keep_ledger()
        except LeaseLost:
            log.warning("session %s: lease lost; another worker owns it now", claim.session_id)
            runner.keep_ledger()  # what it read was committed: a later claim checks it against the log
        except asyncio.CancelledError:
            if self._stopping:  # cut mid-step by stop(): the next worker recovers from the log
                await asyncio.shield(self._release(claim, utcnow()))
            raise
        except Exception:
            log.exception("session %s: the agent loop failed; retrying later", claim.session_id)
            await self._release(claim, utcnow() + timedelta(seconds=CRASH_BACKOFF_SECONDS))
        finally:
            WORKER_LEASES.dec()
            renewing.cancel()
            self._running.pop(claim.session_id, None)
            await slot.release()
            self._runners.pop(claim.session_id, None)
            if not self._stopping:
                self.deps.notifier.wake(forward=False)  # a slot is free: look for more work

    async def _trace_parent(self, claim: Claim) -> Context | None:
        """The trace of the request that asked for this run (read only while tracing is on)."""
        if not tracing.enabled():
            return None
        async with self.deps.database.read() as db:
            return tracing.context_of(await sessions.trace_parent(db, claim.session_id))

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

    async def _release(self, claim: Claim, wake_at: datetime) -> None:
        """Hand the lease back; the session is runnable again at `wake_at`."""
        with contextlib.suppress(LeaseLost):
            async with self.deps.database.unit_of_work() as db:
                row = await leases.fence(db, claim)
                leases.release(row, wake_at)
