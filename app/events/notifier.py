"""Fan-out of committed log events to live streams, and worker wake-ups.

The log in the database is the source of truth; notifications only say "look now". Inside one
process, committed events are handed to subscribers directly (no re-read). Across processes
(several API replicas, separate workers) a `RemoteChannel` — `PgListener` on PostgreSQL,
`SqliteChannel` on SQLite — turns the other processes' messages into local publications by
reading the log once per process (`LogFollower`). A subscriber that sees a gap in `seq` (a missed
or reordered notification) re-reads the log, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal, Protocol, Required

from typing_extensions import TypedDict

from app.events.types import ContentBlock, EventRecord

log = logging.getLogger(__name__)

QUEUE_LIMIT = 2048
# Per-session bookkeeping kept in memory: bounded, oldest first out. Both maps are shortcuts;
# the log and the persisted stream watermark stay authoritative, so forgetting is safe.
TRACKED_SESSIONS = 50_000
# How often a running step looks for a queued `user.interrupt` in the log: rarely when the notifier
# hears every process that can queue one (it says so at once), often when it cannot.
INTERRUPT_SAFETY_POLL_SECONDS = 1.0
INTERRUPT_POLL_SECONDS = 0.1

# What a wake-up is about: the background services that listen for it (`on_wake`).
SESSIONS = "sessions"  # a session became runnable, or a worker slot came free: claim
# "work": a self-hosted work item was queued (the work queue's long polls look, `Notifier.waiting`).
WAKE_TOPICS = (SESSIONS, "webhooks", "deployments", "dreams", "work")


class PreviewTarget(TypedDict):
    """The event an ``event_start`` announces: its type and the id it will be stored with."""

    type: str
    id: str


class ContentDelta(TypedDict):
    type: Literal["content_delta"]
    index: int
    content: ContentBlock


class PreviewFrame(TypedDict, total=False):
    """An ``event_start`` (with ``event``) or ``event_delta`` (with ``event_id`` and ``delta``)."""

    type: Required[Literal["event_start", "event_delta"]]
    event: PreviewTarget
    event_id: str
    delta: ContentDelta


@dataclass(frozen=True)
class LogEvent:
    """A committed event: its position in the session's log and its wire form."""

    seq: int
    wire: EventRecord

    @cached_property
    def sse(self) -> bytes:
        """The SSE frame, encoded once however many streams send it."""
        return sse_frame(self.wire, str(self.wire["id"]))


def sse_frame(wire: EventRecord | PreviewFrame, event_id: str | None = None) -> bytes:
    """`id:` (optional), `event: <type>`, `data: <json>` — the name equals the JSON `type`, as the
    SDKs require. Compact JSON never contains a raw newline, so one `data:` line suffices."""
    head = f"id: {event_id}\r\n" if event_id else ""
    data = json.dumps(wire, separators=(",", ":"))
    return f"{head}event: {wire['type']}\r\ndata: {data}\r\n\r\n".encode()


@dataclass(frozen=True)
class Ephemeral:
    """A stream-only frame (`event_start`, `event_delta`): never persisted, never replayed."""

    wire: PreviewFrame


@dataclass(frozen=True)
class Deleted:
    """The session was deleted: streams send `session.deleted` and close."""


Item = LogEvent | Ephemeral | Deleted


@dataclass(eq=False)
class Subscription:
    session_id: str
    queue: asyncio.Queue[Item] = field(default_factory=lambda: asyncio.Queue(QUEUE_LIMIT))
    # Set when the queue overflowed: the stream must re-read the log to catch up.
    overflowed: bool = False

    def offer(self, item: Item) -> None:
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True


class Peers(Protocol):
    """The other processes on this database that no notification connects this one to."""

    def others_live(self) -> bool: ...


class SessionListener(Protocol):
    """Told after commit when a session is created or deleted (the worker provisions sandboxes)."""

    def session_created(self, session_id: str) -> None: ...

    def session_deleted(self, session_id: str) -> None: ...


class Notifier:
    """In-process publish/subscribe keyed by session id, plus the worker's wake-up signal."""

    def __init__(self) -> None:
        self.listeners: list[SessionListener] = []
        self._subs: dict[str, set[Subscription]] = defaultdict(set)
        self._published: dict[str, int] = {}
        # Highest seq this process has sent to any stream, per session (see the replay rule).
        self.delivered: dict[str, int] = {}
        self._wakers: dict[str, list[Callable[[], None]]] = defaultdict(list)
        self._waiting: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._interrupts: dict[str, set[asyncio.Event]] = defaultdict(set)
        self.remote: RemoteChannel | None = None
        # Sessions whose publications wait for `Held.release` (see `hold`), in order.
        self._held: dict[str, Held] = {}
        # Who else shares this SQLite database right now (`app.db.peers`): while another process
        # is live (`mas serve` and a separate `mas worker`), nothing tells this one of the work
        # and interrupts it makes, so it looks often.
        self.peers: Peers | None = None

    # -- subscribers ---------------------------------------------------------------------------
    def subscribe(self, session_id: str) -> Subscription:
        sub = Subscription(session_id)
        self._subs[session_id].add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.session_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.session_id]

    def subscribed_sessions(self) -> list[str]:
        return list(self._subs)

    def has_subscribers(self, session_id: str) -> bool:
        return bool(self._subs.get(session_id))

    def subscriber_count(self, session_id: str) -> int:
        return len(self._subs.get(session_id, ()))

    def last_published(self, session_id: str) -> int:
        return self._published.get(session_id, 0)

    # -- publishers (call only after the commit that made the events true) ---------------------
    def publish(self, session_id: str, events: list[LogEvent]) -> None:
        held = self._held.get(session_id)
        if held is not None:
            held.kept.append(events)
            return
        fresh = [e for e in events if e.seq > self._published.get(session_id, 0)]
        if not fresh:
            return
        _remember(self._published, session_id, fresh[-1].seq)
        for sub in tuple(self._subs.get(session_id, ())):
            for event in fresh:
                sub.offer(event)

    def hold(self, session_id: str) -> Held:
        """Keep the session's publications until the returned hold is released, then hand them
        out in the order they came (none lost, stale ones dropped as `publish` drops them). A step
        uses it to get work under way before the streams take the event loop (the MCP request of a
        call first, then the frames that announce it). Holds of one session do not nest: a second
        one holds nothing."""
        held = Held(self, session_id)
        if session_id not in self._held:
            self._held[session_id] = held
        return held

    def holding(self, session_id: str) -> bool:
        return session_id in self._held

    def _release(self, held: Held) -> None:
        if self._held.get(held.session_id) is held:
            del self._held[held.session_id]
            for events in held.kept:
                self.publish(held.session_id, events)

    def publish_committed(self, session_id: str, events: list[LogEvent]) -> None:
        """After the commit that appended ``events``: streams here, and other processes told."""
        self.publish(session_id, events)
        if self.remote is not None and events:
            self.remote.forward_events(session_id, events)

    def publish_ephemeral(self, session_id: str, wire: PreviewFrame, *, forward: bool = True) -> None:
        for sub in tuple(self._subs.get(session_id, ())):
            sub.offer(Ephemeral(wire))
        if forward and self.remote is not None:
            self.remote.forward_ephemeral(session_id, wire)

    def publish_deleted(self, session_id: str, *, forward: bool = True) -> None:
        for sub in tuple(self._subs.get(session_id, ())):
            sub.offer(Deleted())
        self._held.pop(session_id, None)  # its streams are closing: nothing is left to hand out
        self._published.pop(session_id, None)
        self.delivered.pop(session_id, None)
        if forward and self.remote is not None:
            self.remote.forward_deleted(session_id)

    def session_created(self, session_id: str, *, forward: bool = True) -> None:
        """After commit: listeners here (the worker provisions a sandbox) and in other processes."""
        for listener in self.listeners:
            listener.session_created(session_id)
        if forward and self.remote is not None:
            self.remote.forward_created(session_id)

    def session_deleted(self, session_id: str, *, forward: bool = True) -> None:
        """After commit: streams close, and listeners here and in other processes (a separate
        `mas worker` removes the sandbox) are told."""
        self.publish_deleted(session_id, forward=forward)
        for listener in self.listeners:
            listener.session_deleted(session_id)

    def mark_delivered(self, session_id: str, seq: int) -> None:
        if seq > self.delivered.get(session_id, 0):
            _remember(self.delivered, session_id, seq)

    # -- interrupts ----------------------------------------------------------------------------
    def interrupt(self, session_id: str, *, forward: bool = True) -> None:
        """After commit: a `user.interrupt` was queued for the session (or thread)."""
        for signal in tuple(self._interrupts.get(session_id, ())):
            signal.set()
        if forward and self.remote is not None:
            self.remote.forward_interrupt(session_id)

    @contextlib.contextmanager
    def interrupts(self, session_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever an interrupt of the session is announced, while the block runs."""
        signal = asyncio.Event()
        self._interrupts[session_id].add(signal)
        try:
            yield signal
        finally:
            signals = self._interrupts.get(session_id)
            if signals is not None:
                signals.discard(signal)
                if not signals:
                    del self._interrupts[session_id]

    def interrupted_sessions(self) -> list[str]:
        """The sessions whose interrupts a step here waits for (`interrupts`)."""
        return list(self._interrupts)

    def interrupt_poll_seconds(self) -> float:
        """How often to look in the log anyway: the announcement is the fast path, the log the truth."""
        return INTERRUPT_SAFETY_POLL_SECONDS if self.hears_everyone() else INTERRUPT_POLL_SECONDS

    def hears_everyone(self) -> bool:
        """Whether every process that can give this one work can also tell it so: then wake-ups
        are not missed and background services may poll rarely."""
        if self.remote is not None:
            return self.remote.problem() is None
        return self.peers is None or not self.peers.others_live()

    # -- wake-ups of background services ------------------------------------------------------
    def on_wake(self, topic: str, wake: Callable[[], None]) -> None:
        """Call ``wake`` (a `LoopService.wake`) whenever ``topic`` is announced, here or elsewhere."""
        self._wakers[topic].append(wake)

    def wake(self, topic: str = SESSIONS, *, forward: bool = True) -> None:
        """After commit: there is work about ``topic``; its services here and in other processes
        look now instead of at their next safety poll."""
        for wake in self._wakers.get(topic, ()):
            wake()
        for announced in tuple(self._waiting.get(topic, ())):
            announced.set()
        if forward and self.remote is not None:
            self.remote.forward_wake(topic)


    @contextlib.contextmanager
    def waiting(self, topic: str) -> Iterator[asyncio.Event]:
        """An event set whenever ``topic`` is announced (here or elsewhere) while the block runs:
        what a request that waits for work (a long poll) sleeps on instead of polling."""
        announced = asyncio.Event()
        self._waiting[topic].add(announced)
        try:
            yield announced
        finally:
            waiting = self._waiting.get(topic)
            if waiting is not None:
                waiting.discard(announced)
                if not waiting:
                    del self._waiting[topic]


class Held:
    """A session's publications kept back by `Notifier.hold`; `release` is idempotent."""

    def __init__(self, notifier: Notifier, session_id: str) -> None:
        self.notifier = notifier
        self.session_id = session_id
        self.kept: list[list[LogEvent]] = []

    def release(self) -> None:
        self.notifier._release(self)


def _remember(table: dict[str, int], session_id: str, seq: int) -> None:
    table.pop(session_id, None)  # re-inserted last: the dict's order is least recently updated first
    table[session_id] = seq
    while len(table) > TRACKED_SESSIONS:
        del table[next(iter(table))]


class RemoteChannel:
    """How a notifier reaches other processes: PostgreSQL LISTEN/NOTIFY (`pg_listener`), unix
    datagram sockets between the processes on one SQLite file (`sqlite_channel`)."""

    def forward_events(self, session_id: str, events: list[LogEvent]) -> None:
        """After commit: the session's log grew by ``events``."""
        raise NotImplementedError

    def forward_ephemeral(self, session_id: str, wire: PreviewFrame) -> None:
        raise NotImplementedError

    def forward_deleted(self, session_id: str) -> None:
        raise NotImplementedError

    def forward_created(self, session_id: str) -> None:
        raise NotImplementedError

    def forward_wake(self, topic: str) -> None:
        raise NotImplementedError

    def forward_interrupt(self, session_id: str) -> None:
        raise NotImplementedError

    def problem(self) -> str | None:
        """Why notifications from other processes may not arrive right now, or None."""
        raise NotImplementedError


FetchEvents = Callable[[str, int], Awaitable[list[LogEvent]]]


class LogFollower:
    """Publishes here what another process committed: told that a session's log grew, it reads
    the new events once for all of this process's streams of the session (one read at a time per
    session; messages while one runs make one more read after it)."""

    def __init__(self, notifier: Notifier, fetch: FetchEvents) -> None:
        self._notifier = notifier
        self._fetch = fetch
        self._fetching: dict[str, asyncio.Task[None]] = {}
        self._again: set[str] = set()
        self._closed = False

    def committed(self, session_id: str, seq: int) -> None:
        if self._notifier.has_subscribers(session_id) and seq > self._notifier.last_published(session_id):
            self.schedule(session_id)

    def catch_up_all(self) -> None:
        """Every stream here reads what it may have missed (after notifications were lost)."""
        for session_id in self._notifier.subscribed_sessions():
            self.schedule(session_id)

    def schedule(self, session_id: str) -> None:
        if self._closed:
            return
        if session_id in self._fetching:
            self._again.add(session_id)
            return
        self._fetching[session_id] = asyncio.create_task(self._fetch_and_publish(session_id))

    async def _fetch_and_publish(self, session_id: str) -> None:
        try:
            events = await self._fetch(session_id, self._notifier.last_published(session_id))
            self._notifier.publish(session_id, events)
        except Exception:
            log.exception("could not read new events of %s", session_id)
        finally:
            del self._fetching[session_id]
            if session_id in self._again:
                self._again.discard(session_id)
                self.schedule(session_id)

    async def close(self) -> None:
        self._closed = True
        tasks = list(self._fetching.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
