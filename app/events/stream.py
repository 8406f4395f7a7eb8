"""The SSE stream of a session: subscribe, backfill from the log, deduplicate by seq, go live.

Replay rule (documented in the README): a new connection first receives the events that no
stream of this session has been sent yet (the session's *stream watermark*), then everything
live. With `Last-Event-ID` it resumes exactly after that event instead. So a client that sends
and then connects still sees the whole turn, even with a model that answers instantly; a client
that connects before each turn never sees a stale `session.status_idle` from the previous turn;
and a client that drops mid-turn gets the rest on reconnect (and the full history from the list).

An *observer* stream (the console, `mas sessions tail`: header `x-mas-observer: 1`) reads the
same way but never moves the watermark: watching a session takes no turn's replay away from the
client that sent it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

from app.db.base import utcnow
from app.events.notifier import (
    Deleted,
    Ephemeral,
    Item,
    LogEvent,
    Notifier,
    PreviewFrame,
    Subscription,
    sse_frame,
)
from app.events.types import EventRecord
from app.ids import new_id
from app.observability.metrics import observe_event_delivery
from app.wire import iso

# Delivering one of these ends a client's read loop, so the watermark is saved before it is sent.
TURN_END_TYPES = frozenset({"session.status_idle", "session.status_terminated"})
PREVIEW_TYPES = frozenset({"agent.message", "agent.thinking"})
# The backlog is read and sent page by page: a small first page so the first frame leaves soon
# whatever the log's size, then larger ones. Memory stays bounded by one page.
FIRST_PAGE = 100
PAGE = 1000

FetchAfter = Callable[[int, int], Awaitable[list[LogEvent]]]
SaveWatermark = Callable[[int], Awaitable[None]]


def deleted_event() -> EventRecord:
    # Never persisted (the log is gone with the session), but shaped like any event: the SDK
    # validates `processed_at` as required.
    return {"type": "session.deleted", "id": new_id("sevt"), "processed_at": iso(utcnow())}


@dataclass
class _Previews:
    """Which previews this connection opened; deltas of others would break the SDK accumulator."""

    wanted: frozenset[str]
    open: set[str] = field(default_factory=set)
    closed: set[str] = field(default_factory=set)

    def admit(self, wire: PreviewFrame) -> bool:
        if wire["type"] == "event_start":
            target = wire.get("event", {})
            if target.get("type") not in self.wanted or target.get("id") in self.closed:
                return False
            self.open.add(str(target.get("id")))
            return True
        event_id = str(wire.get("event_id"))
        return "agent.message" in self.wanted and event_id in self.open and event_id not in self.closed

    def close(self, wire: EventRecord) -> None:
        if wire["type"] in PREVIEW_TYPES:
            self.closed.add(str(wire["id"]))
            self.open.discard(str(wire["id"]))


class SessionStream:
    def __init__(
        self,
        notifier: Notifier,
        session_id: str,
        start_seq: int,
        deltas: frozenset[str],
        fetch_after: FetchAfter,
        save_watermark: SaveWatermark,
        poll_seconds: float,
        observer: bool = False,
    ) -> None:
        self.notifier = notifier
        self.session_id = session_id
        self.last = start_seq
        self.previews = _Previews(deltas)
        self.fetch_after = fetch_after
        self.save_watermark = save_watermark
        self.poll_seconds = poll_seconds
        self.observer = observer
        self._stash: Item | None = None  # taken off the queue while batching, not yet handled

    async def frames(self) -> AsyncGenerator[bytes, None]:
        sub = self.notifier.subscribe(self.session_id)  # before the backfill: nothing falls between
        try:
            async for chunk in self._catch_up():
                yield chunk
            while True:
                item = await self._next(sub)
                if isinstance(item, Deleted):
                    yield sse_frame(deleted_event())
                    return
                if isinstance(item, Ephemeral):
                    if self.previews.admit(item.wire):
                        yield sse_frame(item.wire)
                elif item is None or sub.overflowed or item.seq > self.last + 1:
                    sub.overflowed = False  # a gap, an overflow or a quiet spell: read the log
                    async for chunk in self._catch_up():
                        yield chunk
                elif item.seq == self.last + 1:
                    yield await self._deliver_run(item, sub)
        finally:
            self.notifier.unsubscribe(sub)

    async def _deliver_run(self, first: LogEvent, sub: Subscription) -> bytes:
        """`first` and every contiguous event already queued behind it, as one chunk: when the
        stream falls behind (many subscribers, a burst), it catches up in fewer, larger writes."""
        chunks = [await self._deliver(first) or b""]
        observe_event_delivery(first.wire.get("processed_at"))
        while not sub.queue.empty():
            item = sub.queue.get_nowait()
            if not isinstance(item, LogEvent) or item.seq != self.last + 1:
                self._stash = item  # handled by the next turn of the loop
                break
            chunks.append(await self._deliver(item) or b"")
            observe_event_delivery(item.wire.get("processed_at"))
        return b"".join(chunks)

    async def _next(self, sub: Subscription) -> Item | None:
        if self._stash is not None:
            item, self._stash = self._stash, None
            return item
        if not sub.queue.empty():  # a burst: no timer per event
            return sub.queue.get_nowait()
        try:
            async with asyncio.timeout(self.poll_seconds):  # no task per wait, as wait_for makes
                return await sub.queue.get()
        except TimeoutError:
            return None  # safety net: re-read the log (a notification may have been lost)

    async def _catch_up(self) -> AsyncIterator[bytes]:
        """The log after `self.last`, one chunk per page, each sent before the next is read."""
        size = FIRST_PAGE
        while True:
            batch = await self.fetch_after(self.last, size)
            chunks = []
            for event in batch:
                chunk = await self._deliver(event)
                if chunk is not None:
                    chunks.append(chunk)
            if chunks:
                yield b"".join(chunks)
            if len(batch) < size:
                return
            size = PAGE

    async def _deliver(self, event: LogEvent) -> bytes | None:
        if event.seq <= self.last:
            return None
        if not self.observer:
            await self._advance_watermark(event)
        self.last = event.seq
        self.previews.close(event.wire)
        return event.sse

    async def _advance_watermark(self, event: LogEvent) -> None:
        if (
            event.wire["type"] in TURN_END_TYPES
            and self.notifier.delivered.get(self.session_id, 0) < event.seq
        ):
            # The first stream of this process to send a turn's end saves the watermark before
            # sending it, so a client that reconnects right after never gets that turn again.
            self.notifier.mark_delivered(self.session_id, event.seq)
            await self.save_watermark(event.seq)
        self.notifier.mark_delivered(self.session_id, event.seq)
