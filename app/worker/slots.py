"""Worker slots: how many sessions one worker *works on* at once (model calls, bookkeeping).

A session waiting on its tool calls lends its slot back once the wait has lasted 50 ms: eight
`sleep 600` calls must not starve every other session of a worker. When its tools finish it
takes a slot again, ahead of new claims. How many sessions may wait on tools at once is bounded
separately (the claim limit).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

# A tool wait shorter than this keeps its slot. Lending wakes the claim loop, which runs a claim
# transaction on this event loop in the middle of the call (an MCP call takes a few
# milliseconds), for a slot taken back a moment later.
LEND_AFTER_SECONDS = 0.05


class Slots:
    def __init__(self, size: int, on_free: Callable[[], None] = lambda: None) -> None:
        self.size = size
        self.on_free = on_free  # a slot was given back: look for more work
        self.taken = 0
        self.returning = 0  # sessions whose tools finished, waiting for a slot
        self.changed = asyncio.Condition()

    def free(self) -> int:
        """Slots a new claim may take now (returning sessions go first)."""
        return max(0, self.size - self.taken - self.returning)

    def claim(self) -> Slot:
        """A new claim takes a slot at once (the caller checked `free()`)."""
        self.taken += 1
        return Slot(self)


class Slot:
    """One session's hold on a slot."""

    def __init__(self, slots: Slots) -> None:
        self._slots = slots
        self.held = True

    async def release(self) -> None:
        if not self.held:
            return
        self.held = False
        async with self._slots.changed:
            self._slots.taken -= 1
            self._slots.changed.notify_all()
        self._slots.on_free()

    @asynccontextmanager
    async def lent(self) -> AsyncIterator[None]:
        """Give the slot back for the duration of a tool wait once it has lasted
        `LEND_AFTER_SECONDS`; take one again afterwards (a wait that ended sooner kept it)."""
        loop = asyncio.get_running_loop()
        lending: list[asyncio.Task[None]] = []
        timer = loop.call_later(LEND_AFTER_SECONDS, lambda: lending.append(loop.create_task(self.release())))
        try:
            yield
        finally:
            timer.cancel()
            if lending:
                await lending[0]
                await self._take_again()

    async def _take_again(self) -> None:
        slots = self._slots
        slots.returning += 1
        try:
            async with slots.changed:
                await slots.changed.wait_for(lambda: slots.taken < slots.size)
                slots.taken += 1
                self.held = True
        finally:
            slots.returning -= 1
