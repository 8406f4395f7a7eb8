"""`mas dispatch`: poll a self-hosted environment's work queue and run each claimed session's
worker in a sandbox of its own (behaviour §17; the shape of the hosted service's dispatcher).

For each item: poll (environment key) → ack → the launcher starts a sandbox holding only the
item's ids and secret, whose SDK `EnvironmentWorker` heartbeats, runs the tools and stops the item
itself. The dispatcher watches: a sandbox that exits is removed (a failure is logged with the
worker's last lines and recorded in the item's metadata as `dispatch_failure`); a sandbox whose
item was stopped but which has not exited within the stop grace is killed. A killed or crashed
sandbox leaves its item leased; when the lease runs out the item is queued again and the next
poll starts a fresh sandbox, which runs the unanswered tool call again. After ``max_failures``
failed sandboxes in a row, the item is force-stopped instead.

On SIGTERM the dispatcher stops claiming, lets running sandboxes finish for ``drain_seconds``,
then kills the rest (their items go back to the queue when their leases run out). A restarted
dispatcher adopts the running sandboxes it finds by label and removes the exited ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from app.dispatch.queue import QueueClient, QueueError
from app.sandbox.interface import SandboxError
from app.sandbox.launcher import LaunchedWork, Launcher, WorkLaunch
from app.work.schemas import Work

log = logging.getLogger(__name__)

FAILURE_KEY = "dispatch_failure"


@dataclass
class DispatchOptions:
    api_url: str
    max_sessions: int = 4
    stop_grace_seconds: float = 15.0
    drain_seconds: float = 30.0
    watch_seconds: float = 1.0
    check_work_seconds: float = 3.0
    max_failures: int = 3


@dataclass
class _Tracked:
    session_id: str
    started: float
    checked: float = 0.0
    stop_seen: float | None = None


class Dispatcher:
    def __init__(
        self,
        queue: QueueClient,
        launcher: Launcher,
        options: DispatchOptions,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.queue = queue
        self.launcher = launcher
        self.options = options
        self.echo = echo
        self.running: dict[str, _Tracked] = {}
        self.failures: dict[str, int] = {}
        self._slot_freed = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Serve the queue until ``stop`` is set, then drain (see the module docstring)."""
        await self.recover()
        watch = asyncio.create_task(self._watch_loop(), name="dispatch-watch")
        try:
            await self._claim_loop(stop)  # returns once stop is set; a fatal queue error raises
        finally:
            await self._drain(watch)

    # --- claiming ----------------------------------------------------------------------------
    async def _claim_loop(self, stop: asyncio.Event) -> None:
        """Only the wait for work is interrupted by ``stop``: a claimed item is always launched
        (and tracked), so a stop never leaves an untracked sandbox behind."""
        backoff = 0.5
        while not stop.is_set():
            if len(self.running) >= self.options.max_sessions:
                self._slot_freed.clear()
                await _first(self._slot_freed.wait(), stop.wait(), within=self.options.watch_seconds)
                continue
            try:
                work = await _first(self.queue.poll(), stop.wait())
                backoff = 0.5
            except QueueError as exc:
                if exc.fatal:
                    raise
                log.warning("poll failed (retrying in %.1f s): %s", backoff, exc)
                await _first(asyncio.sleep(backoff), stop.wait())
                backoff = min(backoff * 2, 10.0)
                continue
            if isinstance(work, Work):
                await self._launch(work.id, work.data.id, work.secret)

    async def _launch(self, work_id: str, session_id: str, secret: str | None) -> None:
        if work_id in self.running:
            # Its lease ran out before the worker's first heartbeat (a slow start): the claim that
            # gave it back to us revoked the old secret, so the sandbox starts again with the new one.
            self.echo(f"{work_id}: claimed again after its lease ran out; replacing its sandbox")
            self.running.pop(work_id)
            await self.launcher.remove(work_id)
        try:
            await self.queue.ack(work_id)
        except QueueError as exc:
            log.warning("could not acknowledge %s (another dispatcher may have it): %s", work_id, exc)
            return
        if not secret:
            await self._give_up(work_id, "the poll returned no secret for the worker")
            return
        launch = WorkLaunch(work_id, self.queue.environment_id, session_id, secret, self.options.api_url)
        try:
            await self.launcher.start(launch)
        except SandboxError as exc:
            self.echo(f"{work_id}: could not start its sandbox: {exc}")
            await self._record_failure(work_id, f"could not start the sandbox: {exc}")
            with contextlib.suppress(SandboxError):
                await self.launcher.remove(work_id)
            return
        self.running[work_id] = _Tracked(session_id, time.monotonic())
        self.echo(f"{work_id}: started a sandbox for {session_id}")

    # --- watching ----------------------------------------------------------------------------
    async def _watch_loop(self) -> None:
        while True:
            await asyncio.sleep(self.options.watch_seconds)
            for work_id, tracked in list(self.running.items()):
                try:
                    await self._check(work_id, tracked)
                except (SandboxError, QueueError) as exc:
                    log.warning("checking %s failed: %s", work_id, exc)

    async def _check(self, work_id: str, tracked: _Tracked) -> None:
        seen = await self.launcher.inspect(work_id)
        if seen.state != "running":
            await self._finished(work_id, tracked, seen)
            return
        now = time.monotonic()
        if now - tracked.checked < self.options.check_work_seconds:
            return
        tracked.checked = now
        item = await self.queue.get(work_id)
        if item is None or item.state == "stopped":
            tracked.stop_seen = tracked.stop_seen or now
        if tracked.stop_seen is not None and now - tracked.stop_seen >= self.options.stop_grace_seconds:
            self.echo(
                f"{work_id}: its work item is stopped but the worker is still running after "
                f"{self.options.stop_grace_seconds:g} s; killing the sandbox"
            )
            await self.launcher.kill(work_id)

    async def _finished(self, work_id: str, tracked: _Tracked, seen: LaunchedWork) -> None:
        took = time.monotonic() - tracked.started
        failure = seen.failure()
        if failure is None:
            self.failures.pop(work_id, None)
            self.echo(f"{work_id}: the worker finished {tracked.session_id} after {took:.1f} s")
        else:
            try:
                lines = await self.launcher.logs(work_id, tail=15)
            except SandboxError as exc:
                lines = f"(no logs: {exc})"
            self.echo(f"{work_id}: {failure} after {took:.1f} s; its last lines:\n{_indent(lines)}")
            # Stopped sandboxes (killed by us) are expected; anything else is the item's failure.
            if tracked.stop_seen is None:
                await self._record_failure(work_id, failure)
        await self.launcher.remove(work_id)
        self.running.pop(work_id, None)
        self._slot_freed.set()

    async def _record_failure(self, work_id: str, failure: str) -> None:
        count = self.failures[work_id] = self.failures.get(work_id, 0) + 1
        try:
            await self.queue.annotate(work_id, {FAILURE_KEY: f"{failure} (failure {count})"[:512]})
        except QueueError as exc:
            log.warning("could not record the failure of %s: %s", work_id, exc)
        if count >= self.options.max_failures:
            await self._give_up(work_id, f"{count} sandboxes failed in a row")

    async def _give_up(self, work_id: str, why: str) -> None:
        self.echo(f"{work_id}: giving up ({why}); stopping the work item")
        self.failures.pop(work_id, None)
        try:
            await self.queue.stop(work_id)
        except QueueError as exc:
            log.warning("could not stop %s: %s", work_id, exc)

    # --- start and stop ----------------------------------------------------------------------
    async def recover(self) -> None:
        """Adopt the running sandboxes a previous process left; remove the exited ones."""
        for seen in await self.launcher.launched():
            if not seen.work_id:
                continue
            tracked = _Tracked(seen.session_id, time.monotonic())
            if seen.state == "running":
                await self.launcher.adopt(seen.work_id, self.options.api_url)
                self.running[seen.work_id] = tracked
                self.echo(f"{seen.work_id}: adopted the running sandbox of {seen.session_id}")
            else:
                await self._finished(seen.work_id, tracked, seen)

    async def _all_finished(self) -> None:
        while self.running:
            self._slot_freed.clear()
            await self._slot_freed.wait()

    async def _drain(self, watch: asyncio.Task[None]) -> None:
        if self.running:
            self.echo(
                f"stopping: waiting up to {self.options.drain_seconds:g} s for {len(self.running)} "
                "running sandbox(es) to finish"
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._all_finished(), self.options.drain_seconds)
        watch.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watch
        for work_id in list(self.running):
            self.echo(f"{work_id}: killed at shutdown; its work item is queued again when its lease runs out")
            with contextlib.suppress(SandboxError):
                await self.launcher.remove(work_id)
            self.running.pop(work_id, None)


async def _first(*waits: Coroutine[Any, Any, Any], within: float | None = None) -> Any:
    """The result of whichever wait finishes first (None on timeout); the others are cancelled."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        done, _ = await asyncio.wait(tasks, timeout=within, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return next(iter(done)).result() if done else None


def _indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in (text or "(no output)").splitlines())
