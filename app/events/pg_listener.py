"""Cross-process fan-out through PostgreSQL LISTEN/NOTIFY.

Writers call `pg_notify('mas_events', '<session>:<seq>')` inside the transaction that appends the
events, so the notification is delivered exactly when (and only if) the events are committed.
Each process holds one listening connection; on a notification for a session it has subscribers
for, it reads the new events from the log once and publishes them locally. Deltas and session
lifecycle (created, deleted) and interrupts travel as their own notifications, so a separate `mas worker`
provisions and removes sandboxes; wake-ups of the loop services (by topic) reach every process, and
after a lost connection comes back every service everywhere is woken once. Notifications are sent
by a loop service of their own (`_NotifySender`), in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections import deque
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from app.events.notifier import (
    SESSIONS,
    WAKE_TOPICS,
    FetchEvents,
    LogEvent,
    LogFollower,
    Notifier,
    PreviewFrame,
    RemoteChannel,
)
from app.shared.loops import LoopService

log = logging.getLogger(__name__)

EVENTS_CHANNEL = "mas_events"
DELTAS_CHANNEL = "mas_deltas"
WAKE_CHANNEL = "mas_wake"
MAX_PAYLOAD = 7900  # PostgreSQL's limit is 8000 bytes


def asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PgListener(RemoteChannel):
    def __init__(self, database_url: str, notifier: Notifier, fetch: FetchEvents) -> None:
        self._dsn = asyncpg_dsn(database_url)
        self._notifier = notifier
        self._follower = LogFollower(notifier, fetch)
        self._origin = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._conn: asyncpg.Connection | None = None
        self._sender = _NotifySender(self)
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    async def start(self) -> None:
        await self._connect()
        self._notifier.remote = self
        await self._sender.start()

    def services(self) -> list[LoopService]:
        return [self._sender]

    def problem(self) -> str | None:
        """Why this process hears no notifications from other processes (readiness), or None."""
        if self._closed:
            return "closed"
        if self._conn is None or self._conn.is_closed():
            return "disconnected from PostgreSQL (reconnecting): streams fall back to polling"
        return None

    async def close(self) -> None:
        self._closed = True
        self._notifier.remote = None
        await self._sender.stop()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._follower.close()
        if self._conn is not None:
            await self._conn.close()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._dsn)
        await conn.add_listener(EVENTS_CHANNEL, self._on_events)
        await conn.add_listener(DELTAS_CHANNEL, self._on_delta)
        await conn.add_listener(WAKE_CHANNEL, self._on_wake)
        conn.add_termination_listener(self._on_terminated)
        self._conn = conn

    def _on_terminated(self, _conn: Any) -> None:
        if not self._closed:
            self._tasks.append(asyncio.create_task(self._reconnect(), name="pg-listener-reconnect"))

    async def _reconnect(self) -> None:
        delay = 0.2
        while not self._closed:
            try:
                await self._connect()
            except (OSError, asyncpg.PostgresError):
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            # Anything notified while we were away is still in the log: catch every stream up.
            self._follower.catch_up_all()
            # Wake-ups missed while away (or dropped by our sender): every service here and
            # elsewhere looks once now instead of at its next safety poll.
            for topic in WAKE_TOPICS:
                self._notifier.wake(topic)
            return

    # -- incoming ------------------------------------------------------------------------------
    def _on_events(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        session_id, _, marker = payload.rpartition(":")
        if marker == "deleted":  # streams close; this process's worker removes the sandbox
            self._notifier.session_deleted(session_id, forward=False)
            return
        if marker == "created":  # this process's worker provisions the sandbox
            self._notifier.session_created(session_id, forward=False)
            return
        if marker == "interrupt":  # a step of this process running the session stops
            self._notifier.interrupt(session_id, forward=False)
            return
        self._follower.committed(session_id, int(marker))

    def _on_delta(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        message = json.loads(payload)
        if message.get("o") != self._origin:
            self._notifier.publish_ephemeral(message["s"], message["w"], forward=False)

    def _on_wake(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        topic, _, origin = payload.partition(":")
        if origin != self._origin:  # this process woke its own services already
            self._notifier.wake(topic if topic in WAKE_TOPICS else SESSIONS, forward=False)

    # -- outgoing ------------------------------------------------------------------------------
    def forward_events(self, session_id: str, events: list[LogEvent]) -> None:
        """Nothing to do: the transaction that appended the events notified (`events.service`)."""

    def forward_ephemeral(self, session_id: str, wire: PreviewFrame) -> None:
        payload = json.dumps({"o": self._origin, "s": session_id, "w": wire}, separators=(",", ":"))
        if len(payload.encode()) <= MAX_PAYLOAD:  # deltas are best-effort previews
            self._sender.send(DELTAS_CHANNEL, payload)

    def forward_deleted(self, session_id: str) -> None:
        self._sender.send(EVENTS_CHANNEL, f"{session_id}:deleted")

    def forward_created(self, session_id: str) -> None:
        self._sender.send(EVENTS_CHANNEL, f"{session_id}:created")

    def forward_wake(self, topic: str) -> None:
        self._sender.send(WAKE_CHANNEL, f"{topic}:{self._origin}")

    def forward_interrupt(self, session_id: str) -> None:
        self._sender.send(EVENTS_CHANNEL, f"{session_id}:interrupt")

    async def notify(self, channel: str, payload: str) -> None:
        if self._conn is None:
            raise asyncpg.InterfaceError("not connected")
        await self._conn.execute("SELECT pg_notify($1, $2)", channel, payload)


class _NotifySender(LoopService):
    """Sends this process's notifications in the order they were made: a loop service with no
    interval, woken by each one queued. One that cannot be sent (the connection is being
    re-established) is dropped with a warning: the log stays the truth, and after reconnecting the
    listener wakes every service everywhere once."""

    def __init__(self, listener: PgListener) -> None:
        super().__init__("pg-notify-sender", None)
        self._listener = listener
        self._outbox: deque[tuple[str, str]] = deque()

    def send(self, channel: str, payload: str) -> None:
        self._outbox.append((channel, payload))
        self.wake()

    async def run_once(self) -> float | None:
        while self._outbox:
            channel, payload = self._outbox.popleft()
            try:
                await self._listener.notify(channel, payload)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
                log.warning("could not send %s notification", channel)
        return None
