"""The SSE response of the session streams: ready frames out, pings, disconnect and shutdown.

sse-starlette's ``EventSourceResponse`` did the same with five tasks per stream (an anyio task
group running the frames, the pings, the client's disconnect and a server-shutdown watcher) and
an anyio cancel scope around every frame it sent (for a per-send timeout these streams never set).
Here a stream is two tasks: the *pump* sends each chunk its iterator yields as it comes; the
request's own task waits for the client's disconnect and sends a ping comment every
``ping_seconds``. What the client sees is unchanged: the same headers, the same
frames (the iterator's bytes as they are), the same ping comments.

- The client leaves: the pump is cancelled (the iterator's ``finally`` runs: the stream
  unsubscribes) and nothing more is sent.
- The iterator ends (the session was deleted): the response ends.
- The server stops (``mas serve`` got SIGTERM): ``OpenStreams.close_all`` ends every open stream
  at once, so a graceful shutdown does not wait for clients that never leave.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

_HEADERS = {"cache-control": "no-store", "connection": "keep-alive", "x-accel-buffering": "no"}
_END: Message = {"type": "http.response.body", "body": b"", "more_body": False}


class OpenStreams:
    """The pumps of the streams open in this process (``app.state.streams``)."""

    def __init__(self) -> None:
        self._pumps: set[asyncio.Task[None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closing = False

    def add(self, pump: asyncio.Task[None]) -> None:
        self._loop = asyncio.get_running_loop()
        self._pumps.add(pump)
        pump.add_done_callback(self._pumps.discard)

    def __len__(self) -> int:
        return len(self._pumps)

    def close_all(self) -> None:
        """End every open stream (and any opened from now on). Safe from a signal handler."""
        self.closing = True
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._cancel_all)

    def _cancel_all(self) -> None:
        for pump in tuple(self._pumps):
            pump.cancel()


def ping_frame() -> bytes:
    """A comment line, as sse-starlette sent it: clients skip it, proxies see traffic."""
    return f": ping - {datetime.now(UTC)}\r\n\r\n".encode()


class EventStream(Response):
    """``text/event-stream`` of ``frames`` (each item: one or more complete SSE frames)."""

    media_type = "text/event-stream"

    # ``status_code`` is read by FastAPI's OpenAPI generator (the documented response's code).
    def __init__(self, frames: AsyncIterator[bytes], ping_seconds: float, status_code: int = 200) -> None:
        self.frames = frames
        self.ping_seconds = ping_seconds
        self.status_code = status_code
        self.background = None
        self.init_headers(_HEADERS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        streams: OpenStreams | None = getattr(scope["app"].state, "streams", None)
        if scope["method"] == "HEAD" or (streams is not None and streams.closing):
            await _close(self.frames)
            await send(_END)
            return
        pump = asyncio.create_task(self._pump(send))
        if streams is not None:
            streams.add(pump)
        try:
            left = await self._watch(pump, receive, send)
        finally:
            pump.cancel()  # a no-op unless this task itself was cancelled (a forced shutdown)
        if not left:
            await send(_END)

    async def _pump(self, send: Send) -> None:
        try:
            async for chunk in self.frames:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            await _close(self.frames)

    async def _watch(self, pump: asyncio.Task[None], receive: Receive, send: Send) -> bool:
        """Until the pump ends (False) or the client leaves (True); pings while it is quiet."""
        listen = asyncio.ensure_future(receive())
        try:
            while True:
                done, _ = await asyncio.wait((pump, listen), timeout=self.ping_seconds or None,
                                             return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
                if listen in done:
                    if listen.result()["type"] == "http.disconnect":
                        await _cancelled(pump)
                        return True
                    listen = asyncio.ensure_future(receive())
                elif pump in done:
                    if not pump.cancelled():
                        pump.result()  # a failure of the stream is the request's failure
                    return False
                else:
                    await send({"type": "http.response.body", "body": ping_frame(), "more_body": True})
        finally:
            listen.cancel()


async def _cancelled(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close(frames: AsyncIterator[bytes]) -> None:
    aclose = getattr(frames, "aclose", None)
    if aclose is not None:
        await aclose()
