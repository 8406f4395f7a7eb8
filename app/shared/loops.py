"""One shape for every background loop: a `LoopService` (after Prefect's loop services).

A service has a name, an interval and one method, `run_once`; `start` runs it in a task and
`stop` ends that task. Between rounds it sleeps until the interval has passed or someone calls
`wake()` (the notifier does, after the commit that gave it work, in this process or, through
`NOTIFY`, in another): work is picked up at once, and the interval is only the safety poll for a
wake-up that can be missed. `run_once` may ask for its next round sooner than the interval (a
retry or a schedule falls due then) or at once (it stopped at a batch limit). A round that raises
is logged and the service goes on with the next one. A service not `enabled` (by its setting)
never starts.

    class Sweeper(LoopService):
        async def run_once(self) -> float | None:
            ...  # one round; None: next round after the interval (or a wake-up)

    sweeper = Sweeper("storage-sweeper", settings.storage_sweep_seconds)
    sweeper.wake_on(notifier, "storage", settings.missed_wakeup_poll_seconds)  # optional
    await sweeper.start(); ...; await sweeper.stop()
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)

AT_ONCE = 0.0


class WakeSource(Protocol):
    """Who announces work (the notifier): calls the registered wake-ups, knows whether it hears
    every process that can make work."""

    def on_wake(self, topic: str, wake: Callable[[], None]) -> None: ...

    def hears_everyone(self) -> bool: ...


class LoopService:
    """A background loop: `run_once` every `interval_seconds`, and as soon as it is woken.

    `interval_seconds` None: the service runs only when woken. `wait_first`: the first round waits
    for the interval too (a sweeper has nothing to do at start). `enabled` False: `start` does
    nothing (the service's setting turned it off).
    """

    wait_first = False
    # Started by its first use (the first sandbox), not with the process: not started yet is fine.
    on_demand = False

    def __init__(self, name: str, interval_seconds: float | None, *, enabled: bool = True) -> None:
        self.name = name
        self.interval_seconds = interval_seconds
        self.enabled = enabled
        self.rounds = 0  # rounds run since start (failed ones included)
        self.failures = 0  # rounds that raised, in a row
        self._woken = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._source: WakeSource | None = None
        self._missed_poll_seconds: float | None = None

    def wake_on(self, source: WakeSource, topic: str, missed_poll_seconds: float) -> None:
        """Be woken whenever ``source`` announces ``topic``; poll every ``missed_poll_seconds`` at
        most while it cannot hear every process (an announcement may be missed then)."""
        source.on_wake(topic, self.wake)
        self._source = source
        self._missed_poll_seconds = missed_poll_seconds

    # -- what a service defines ------------------------------------------------------------------
    async def run_once(self) -> float | None:
        """One round. Returns when to run the next: None after the interval (or a wake-up),
        `AT_ONCE` (more work is waiting), or in that many seconds (capped by the interval)."""
        raise NotImplementedError

    def interval(self) -> float | None:
        """The safety poll now: shorter while wake-ups can be missed (see `wake_on`)."""
        missed = self._missed_poll_seconds
        if self._source is None or missed is None or self._source.hears_everyone():
            return self.interval_seconds
        return missed if self.interval_seconds is None else min(self.interval_seconds, missed)

    async def on_stop(self) -> None:
        """Release what the service holds (an HTTP client), after its last round has ended."""

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        if not self.enabled or self.running:
            return
        self._stopped = False
        self._task = asyncio.create_task(self._loop(), name=self.name)

    async def stop(self) -> None:
        """Cancel the round in progress (if any) and end the loop."""
        task, self._task = self._task, None
        self._stopped = True
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await self.on_stop()

    def wake(self) -> None:
        """Run a round now (or right after the one in progress: nothing told is lost)."""
        self._woken.set()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def problem(self) -> str | None:
        """Why this service does no work (readiness), or None."""
        if self._stopped:
            return "stopped"
        if self._task is None:
            return None if self.on_demand else "not started"
        if self._task.done():
            error = None if self._task.cancelled() else self._task.exception()
            return f"its loop ended ({error!r})" if error else "its loop ended"
        return None

    # -- the loop --------------------------------------------------------------------------------
    async def _loop(self) -> None:
        if self.wait_first:
            await self._sleep(None)
        while True:
            self._woken.clear()  # a wake-up during the round below makes the next one start at once
            self.rounds += 1
            try:
                again = await self.run_once()
                self.failures = 0
            except Exception:  # one bad round (the database restarting) must not end the service
                self.failures += 1
                log.exception("%s: a round failed (%d in a row)", self.name, self.failures)
                again = None
            await self._sleep(again)

    async def _sleep(self, again: float | None) -> None:
        seconds = self._wait_seconds(again)
        if seconds is not None and seconds <= 0:
            await asyncio.sleep(0)  # let the rest of the process run between back-to-back rounds
            return
        started = time.monotonic()
        while True:
            left = None if seconds is None else seconds - (time.monotonic() - started)
            if left is not None and left <= 0:
                return
            try:
                await asyncio.wait_for(self._woken.wait(), self._slice(left))
                return
            except TimeoutError:
                # A long sleep chosen while every wake-up was heard ends early once one can be
                # missed (a separate worker started on SQLite, the LISTEN connection was lost).
                seconds = self._wait_seconds(again)

    def _wait_seconds(self, again: float | None) -> float | None:
        interval = self.interval()
        return interval if again is None else again if interval is None else min(again, interval)

    def _slice(self, left: float | None) -> float | None:
        """How long to sleep before asking the wake source again whether it hears everyone: no
        database work, only the question, every `missed_poll_seconds`."""
        missed = self._missed_poll_seconds if self._source is not None else None
        if missed is None:
            return left
        return missed if left is None else min(left, missed)
