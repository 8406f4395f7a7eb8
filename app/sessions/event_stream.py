"""Opening a session stream: validate, choose where replay starts, wire the stream to the log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from app.config import Settings
from app.db.engine import Database
from app.errors import InvalidRequest
from app.events import service
from app.events.notifier import LogEvent, Notifier
from app.events.schemas import DELTA_TYPES
from app.events.stream import SessionStream
from app.sessions import service as sessions


def check_deltas(deltas: Sequence[str] | None) -> frozenset[str]:
    values = list(deltas or ())
    if len(values) > 100:
        raise InvalidRequest("event_deltas: at most 100 values")
    for value in values:
        if value not in DELTA_TYPES:
            raise InvalidRequest(f"event_deltas: {value!r} is not one of agent.message, agent.thinking")
    return frozenset(values)


async def open_stream(
    database: Database,
    notifier: Notifier,
    settings: Settings,
    session_id: str,
    deltas: Sequence[str] | None,
    last_event_id: str | None,
    observer: bool = False,
) -> AsyncIterator[bytes]:
    """`observer`: a watcher (the console, `mas sessions tail`) that never moves the watermark."""
    wanted = check_deltas(deltas)
    async with database.raw.snapshot() as conn:
        start = await sessions.stream_start(conn, notifier, session_id, last_event_id)
    return _frames(database, notifier, settings, session_id, start, wanted, observer)


async def open_thread_stream(
    database: Database,
    notifier: Notifier,
    settings: Settings,
    session_id: str,
    thread_id: str,
    deltas: Sequence[str] | None,
    last_event_id: str | None,
    observer: bool = False,
) -> AsyncIterator[bytes]:
    """A thread's own stream (the session's stream for the primary thread)."""
    wanted = check_deltas(deltas)
    async with database.read() as db:
        log_id, start = await sessions.thread_stream_start(db, notifier, session_id, thread_id, last_event_id)
    return _frames(database, notifier, settings, log_id, start, wanted, observer)


def _frames(
    database: Database,
    notifier: Notifier,
    settings: Settings,
    session_id: str,
    start: int,
    wanted: frozenset[str],
    observer: bool,
) -> AsyncIterator[bytes]:
    async def fetch_after(seq: int, limit: int) -> list[LogEvent]:
        async with database.raw.connection() as conn:
            return await service.fetch_after_raw(conn, session_id, seq, limit)

    async def save_watermark(seq: int) -> None:
        async with database.unit_of_work() as db:
            await sessions.save_stream_watermark(db, session_id, seq)

    stream = SessionStream(
        notifier,
        session_id,
        start,
        wanted,
        fetch_after,
        save_watermark,
        settings.stream_poll_seconds,
        observer=observer,
    )
    return stream.frames()
