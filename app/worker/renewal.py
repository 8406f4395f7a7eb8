"""Lease renewal as a loop service: while a session's turn (or a dream) runs, its lease is renewed
every third of its length; when a renewal finds the lease taken, the work it covered is cancelled
(another worker owns it now). A renewal that fails (the database restarting) is tried again at
the next round, while the lease still has two thirds of its time."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from app.shared.loops import LoopService

log = logging.getLogger(__name__)


class LeaseRenewal(LoopService):
    wait_first = True

    def __init__(
        self,
        name: str,
        lease_seconds: float,
        renew: Callable[[], Awaitable[bool]],
        work: asyncio.Task[Any] | None,
    ) -> None:
        super().__init__(name, lease_seconds / 3)
        self._renew = renew
        self._work = work
        self.lost = False

    async def run_once(self) -> float | None:
        if not await self._renew():
            log.warning("%s: the lease was taken by another worker; stopping its work", self.name)
            self.lost = True
            self.interval_seconds = None  # nothing left to renew: sleep until stopped
            if self._work is not None:
                self._work.cancel()
        return None
