"""A step's MCP calls until their requests are out.

The requests of a step's MCP calls are sent by tasks of the `mcp` client on this event loop, a few
hops each; whatever else is ready to run goes first at every hop. The work a step would start next
to them (the streams sending the frames that announce the calls, the look in the log for an
interrupt) waits until the requests are written, so it runs while the servers work instead of
before they get the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

# How long that work waits at most: a server being reconnected, say, takes longer to be sent
# its request, and the work goes ahead without it.
SEND_WAIT_SECONDS = 0.05


class Launch:
    """A step's MCP calls whose requests are not out yet."""

    def __init__(self, call_ids: list[str]) -> None:
        self.waiting = set(call_ids)
        self.written = asyncio.Event()
        if not self.waiting:
            self.written.set()

    def signal(self, call_id: str) -> Callable[[], None] | None:
        """What the call tells when its request is out (None: not an MCP call); idempotent."""
        if call_id not in self.waiting:
            return None

        def sent() -> None:
            self.waiting.discard(call_id)
            if not self.waiting:
                self.written.set()

        return sent

    async def until_written(self, running: asyncio.Future[Any]) -> None:
        """Until every request is out, the calls have ended, or `SEND_WAIT_SECONDS` passed."""
        if self.written.is_set():
            return
        waiting = asyncio.ensure_future(self.written.wait())
        try:
            either: list[asyncio.Future[Any]] = [waiting, running]
            await asyncio.wait(either, timeout=SEND_WAIT_SECONDS, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiting.cancel()
