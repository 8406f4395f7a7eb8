"""The worker: claims runnable sessions with leases and runs them, many at once.

It runs embedded in `mas serve` or alone as `mas worker`. Sessions become runnable when clients
send work (`wake_at`), when a retry backoff ends, or when a lease expires because its worker died;
a claim takes a lease with a fencing token that every later write checks. Wake-ups arrive through
the notifier (in-process, or `NOTIFY` across processes); each idle round also reads when the next
session falls due and sleeps until then; a long poll is the safety net.
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
from app.events.notifier import SESSIONS
from app.observability import tracing
from app.observability.context import session_id_var, worker_id_var
from app.observability.metrics import WORKER_LEASES
from app.sessions import leases
from app.sessions import service as sessions
from app.sessions.leases import Claim, LeaseLost
from app.shared.loops import AT_ONCE, LoopService
from app.worker.renewal import LeaseRenewal
from app.worker.slots import Slot, Slots

log = logging.getLogger(__name__)

CRASH_BACKOFF_SECONDS = 5.0
STOP_GRACE_SECONDS = 10.0


class Worker(LoopService):
    """Claims runnable sessions as a loop service: woken by the notifier when a session becomes
    runnable or a slot comes free, at the time the next session falls due (a retry backoff ends,
    a lease expires), and otherwise every `MAS_WORKER_POLL_SECONDS` (the safety poll)."""

    def __init__(self, deps: LoopDeps) -> None:
        super().__init__("worker-claims", deps.settings.worker_poll_seconds)
        self.deps = deps
        self.settings = deps.settings
        self.owner = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._running: dict[str, asyncio.Task[None]] = {}
        self._runners: dict[str, SessionRunner] = {}
        self.ledgers = Ledgers(self.settings.worker_ledgers)
        self._slots = Slots(self.settings.worker_concurrency, self.wake)
        self._stopping = False
        self.wake_on(deps.notifier, SESSIONS, self.settings.missed_wakeup_poll_seconds)

    async def start(self) -> None:
        worker_id_var.set(self.owner)  # inherited by the claim loop and every session it runs
        await super().start()
        log.info("worker %s started (concurrency %d)", self.owner, self.settings.worker_concurrency)

    def running_sessions(self) -> set[str]:
        """The sessions this worker runs right now."""
        return set(self._running)

    def problem(self) -> str | None:
        """Why this worker claims no work (readiness), or None."""
        return "stopping" if self._stopping else super().problem()

    async def stop(self, grace_seconds: float = STOP_GRACE_SECONDS) -> None:
        """Stop gracefully: claim nothing more, let each running session finish its current step
        (for up to `grace_seconds`, then cancel it), and hand every lease back at once, so another
        worker resumes those sessions now rather than when the leases expire."""
        self._stopping = True
        await super().stop()
        for runner in self._runners.values():
            runner.stop_after_step()
        running = list(self._running.values())
        if running:
            _, late = await asyncio.wait(running, timeout=grace_seconds)
            for task in late:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def run_once(self) -> float | None:
        """Claim what is runnable and fits; when to look again (None: when woken)."""
        # Sessions waiting on tools hold no slot; how many may wait is bounded on its own.
        limit = self.settings.worker_concurrency + self.settings.worker_tool_waits
        free = min(self._slots.free(), limit - len(self._running))
        if free <= 0:
            return None  # a slot coming free wakes the loop
        async with self.deps.database.read() as db:  # idle rounds read; they take no write lock
            wait = await leases.seconds_until_runnable(db)
        if wait is None or wait > 0:
            return wait
        async with self.deps.database.unit_of_work() as db:
            claims = await leases.claim(db, self.owner, self.settings.worker_lease_seconds, free)
        for claim in claims:
            slot = self._slots.claim()
            self._running[claim.session_id] = asyncio.create_task(
                self._run(claim, slot), name=f"session-{claim.session_id}"
            )
        # Then at once: the next round claims more or reads when the next session falls due.
        # Nothing claimed: another worker took what was runnable; look again shortly.
        return AT_ONCE if claims else self.settings.missed_wakeup_poll_seconds

    async def _run(self, claim: Claim, slot: Slot) -> None:
        session_id_var.set(claim.session_id)  # this task's log lines, and its child tasks'
        renewing = self._renewal(claim)
        await renewing.start()
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
            await renewing.stop()
            self._running.pop(claim.session_id, None)
            await slot.release()
            self._runners.pop(claim.session_id, None)
            if not self._stopping:
                self.wake()  # a slot is free: look for more work

    async def _trace_parent(self, claim: Claim) -> Context | None:
        """The trace of the request that asked for this run (read only while tracing is on)."""
        if not tracing.enabled():
            return None
        async with self.deps.database.read() as db:
            return tracing.context_of(await sessions.trace_parent(db, claim.session_id))

    def _renewal(self, claim: Claim) -> LeaseRenewal:
        """Renews the claim's lease while this task runs; cancels the task if the lease was lost."""
        lease_seconds = self.settings.worker_lease_seconds

        async def renew() -> bool:
            async with self.deps.database.unit_of_work() as db:
                return await leases.renew(db, claim, lease_seconds)

        return LeaseRenewal(f"lease-{claim.session_id}", lease_seconds, renew, asyncio.current_task())

    async def _release(self, claim: Claim, wake_at: datetime) -> None:
        """Hand the lease back; the session is runnable again at `wake_at`."""
        with contextlib.suppress(LeaseLost):
            async with self.deps.database.unit_of_work() as db:
                row = await leases.fence(db, claim)
                leases.release(row, wake_at)
