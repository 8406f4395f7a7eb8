"""The append-only event log of a session.

Positions (`seq`) are handed out when an event is *processed*: server events at once, client
events when the agent consumes them (so the log reads in processing order, as on the hosted
service). Queued client events have no position yet. Every append publishes to live streams only
after the commit that made it true.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Literal, cast

from pydantic_core import from_json, to_json
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.engine import after_commit, on_postgres
from app.db.models import SessionEvent
from app.db.raw import RawConnection, Row, json_value, wire_time
from app.events import repository
from app.events.notifier import LogEvent, Notifier
from app.events.pg_listener import EVENTS_CHANNEL
from app.events.repository import EventColumns
from app.events.types import EVENT, HARNESS, EventRecord, Harness
from app.ids import new_id
from app.shared.storable import storable
from app.wire import iso

RESERVED = ("id", "type", "processed_at", "harness")


def new_event_id() -> str:
    return new_id("sevt")


def to_wire(row: SessionEvent) -> EventRecord:
    """The event as clients see it (the loop's ``harness`` record never leaves the server)."""
    return cast(
        EventRecord, {"id": row.id, "type": row.type, **row.data, "processed_at": iso(row.processed_at)}
    )


def to_record(row: SessionEvent) -> EventRecord:
    """The event with the loop's bookkeeping in ``harness``, for the agent loop."""
    record = cast(EventRecord, {"id": row.id, "type": row.type, **row.data})
    if row.harness:
        record["harness"] = cast(Harness, row.harness)
    record["processed_at"] = iso(row.processed_at)
    return record


def _record_of(row: repository.RecordRow) -> EventRecord:
    """`to_record` of a row read as plain columns (`repository.RecordRow`)."""
    _, id_, type_, data, harness, processed_at = row
    record = cast(EventRecord, {"id": id_, "type": type_, **data})
    if harness:
        record["harness"] = cast(Harness, harness)
    record["processed_at"] = iso(processed_at)
    return record


def _now() -> datetime:
    """The wire shows `processed_at` in milliseconds; store that, so filtering on a value read
    back (`created_at[gt]=<processed_at>`) excludes the event it came from."""
    now = utcnow()
    return now.replace(microsecond=now.microsecond - now.microsecond % 1000)


def checked(event: EventRecord) -> tuple[dict[str, Any], Harness | None]:  # JSON boundary: `data`
    """Hold an event to its type before it is stored: the wire fields to the union's model of its
    ``type`` (unknown fields refused), its ``harness`` to ``Harness``. A mismatch is a bug of the
    code that built the event, raised where it was built. Returns (data, harness)."""
    # JSON boundary: the stored `data` column, held to the event union just below.
    data = {k: v for k, v in event.items() if k not in RESERVED}
    EVENT.validate_python({**data, "type": event["type"]})
    harness = event.get("harness")
    if harness is not None:
        HARNESS.validate_python(harness)
    return data, harness or None


def _row(session_id: str, event: EventRecord, now: datetime, seq: int | None) -> SessionEvent:
    return SessionEvent(**_values(session_id, event, now, seq))


def _values(session_id: str, event: EventRecord, now: datetime, seq: int | None) -> EventColumns:
    """The row's column values (the event checked, made storable)."""
    data, harness = checked(event)
    return {
        "id": event.get("id") or new_event_id(),
        "session_id": session_id,
        "seq": seq,
        "type": event["type"],
        # A tool's binary output or a model's NUL must not make the step fail to commit.
        "data": storable(data),
        "harness": storable(harness),
        "created_at": now,
        "processed_at": now if seq is not None else None,
    }


def _wire_of(values: EventColumns) -> EventRecord:
    """`to_wire` of a row from its column values."""
    at = iso(values["processed_at"])
    return cast(
        EventRecord, {"id": values["id"], "type": values["type"], **values["data"], "processed_at": at}
    )


async def _publish_after_commit(
    db: AsyncSession, notifier: Notifier, session_id: str, rows: list[SessionEvent]
) -> None:
    published = [LogEvent(int(r.seq or 0), to_wire(r)) for r in rows]
    await _publish_wire_after_commit(db, notifier, session_id, published)


async def _publish_wire_after_commit(
    db: AsyncSession, notifier: Notifier, session_id: str, published: list[LogEvent]
) -> None:
    if on_postgres(db):
        await repository.notify(db, EVENTS_CHANNEL, f"{session_id}:{published[-1].seq}")
    after_commit(db, lambda: notifier.publish(session_id, published))


async def append(
    db: AsyncSession, notifier: Notifier, session_id: str, events: Sequence[EventRecord]
) -> list[EventRecord]:
    """Append server events (processed now). An event may carry a pre-assigned `id` (previews)."""
    if not events:
        return []
    last = await repository.allocate_seqs(db, session_id, len(events))
    return await append_reserved(db, notifier, session_id, events, last)


async def append_reserved(
    db: AsyncSession, notifier: Notifier, session_id: str, events: Sequence[EventRecord], last: int
) -> list[EventRecord]:
    """`append` at positions the caller has just reserved in this transaction, ``last`` the
    highest of ``len(events)`` (``sessions.leases.fenced_seqs`` reserves them with the fence)."""
    if not events:
        return []
    now = _now()
    rows = [_values(session_id, e, now, last - len(events) + 1 + i) for i, e in enumerate(events)]
    await repository.insert_rows(db, rows)
    published = [LogEvent(int(r["seq"] or 0), _wire_of(r)) for r in rows]
    await _publish_wire_after_commit(db, notifier, session_id, published)
    return [p.wire.copy() for p in published]  # the caller's copies; the published ones stay as sent


async def enqueue(db: AsyncSession, session_id: str, events: Sequence[EventRecord]) -> list[EventRecord]:
    """Store client events as queued (no position, `processed_at` null) until the agent takes them."""
    now = _now()
    rows = [_row(session_id, e, now, None) for e in events]
    repository.add_all(db, rows)
    await db.flush()
    return [to_wire(r) for r in rows]


async def mark_processed(
    db: AsyncSession, notifier: Notifier, session_id: str, event_ids: Sequence[str]
) -> list[EventRecord]:
    """Give queued client events their place in the log, in the order of `event_ids` (Core
    statements: no ORM instances, which nothing in this transaction holds)."""
    if not event_ids:
        return []
    found = {r[1]: r for r in await repository.queued_by_ids(db, session_id, event_ids)}
    rows = [found[i] for i in dict.fromkeys(event_ids) if i in found]
    if not rows:
        return []
    last = await repository.allocate_seqs(db, session_id, len(rows))
    now = _now()
    first = last - len(rows) + 1
    await repository.place(db, [(r[0], first + i, now) for i, r in enumerate(rows)])
    at = iso(now)
    published = [
        LogEvent(first + i, cast(EventRecord, {"id": r[1], "type": r[2], **r[3], "processed_at": at}))
        for i, r in enumerate(rows)
    ]
    await _publish_wire_after_commit(db, notifier, session_id, published)
    return [p.wire.copy() for p in published]


async def queued(db: AsyncSession, session_id: str) -> list[EventRecord]:
    """Client events not yet processed, in arrival order."""
    return [
        cast(EventRecord, {"id": id_, "type": type_, **data, "processed_at": iso(at)})
        for _, id_, type_, data, _, at in await repository.queued(db, session_id)
    ]


async def history(db: AsyncSession, session_id: str) -> list[EventRecord]:
    """Every processed event with its private fields, in log order (the agent loop's context)."""
    return [to_record(r) for r in await repository.history(db, session_id)]


async def records_after(db: AsyncSession, session_id: str, seq: int) -> list[tuple[int, EventRecord]]:
    """Processed events after `seq` with their private fields (the loop's incremental read)."""
    return [(int(r[0] or 0), _record_of(r)) for r in await repository.records_after(db, session_id, seq)]


async def records_by_id(db: AsyncSession, session_id: str, ids: Sequence[str]) -> list[EventRecord]:
    """The events of a session's log with these ids (with their private fields), in `ids` order;
    unknown ids are left out."""
    found = {r.id: r for r in await repository.by_ids(db, session_id, ids)} if ids else {}
    return [to_record(found[i]) for i in ids if i in found]


async def fetch_after(db: AsyncSession, session_id: str, seq: int, limit: int = 1000) -> list[LogEvent]:
    """Up to `limit` processed events after `seq`, in log order, in their wire form (`to_wire`)."""
    rows = await repository.wire_after_seq(db, session_id, seq, limit)
    return [
        LogEvent(int(s or 0), cast(EventRecord, {"id": i, "type": t, **data, "processed_at": iso(at)}))
        for s, i, t, data, at in rows
    ]


async def fetch_after_raw(conn: RawConnection, session_id: str, seq: int, limit: int) -> list[LogEvent]:
    """``fetch_after`` as one plain statement on the driver (no ORM session, statement or
    instances): what a stream reads after each wake-up."""
    rows = await repository.raw_page(conn, session_id, queued=False, descending=False, after=seq, limit=limit)
    return [_log_event(row) for row in rows]


def _log_event(row: Row) -> LogEvent:
    """A raw row of (seq, id, type, data, processed_at) in its wire form (``to_wire``'s)."""
    seq, event_id, event_type, data, at = row
    wire = {"id": event_id, "type": event_type, **json_value(data), "processed_at": wire_time(at)}
    return LogEvent(int(seq), cast(EventRecord, wire))


async def id_at(db: AsyncSession, session_id: str, seq: int) -> str | None:
    """The id of the event at position `seq` of the log, if there is one."""
    return await repository.id_at(db, session_id, seq)


async def seq_of(db: AsyncSession, session_id: str, event_id: str) -> int | None:
    return await repository.seq_of(db, session_id, event_id)


async def raw_seq_of(conn: RawConnection, session_id: str, event_id: str) -> int | None:
    """``seq_of`` as one plain statement on the driver."""
    return await repository.raw_seq_of(conn, session_id, event_id)


PageKey = tuple[str, int]  # ("log", seq) or ("queue", pk)


async def list_page(
    db: AsyncSession,
    session_id: str,
    *,
    limit: int,
    after: PageKey | None,
    order: Literal["asc", "desc"],
    types: Sequence[str] | None,
    ranges: dict[str, datetime],
) -> tuple[list[EventRecord], PageKey | None]:
    """One page of the history: processed events in log order, then (ascending) the client events
    still queued, with `processed_at` null. A time range compares `processed_at`, so it lists
    processed events only. Returns the rows and the key to continue after (None: last page)."""
    phases = ["log"] if ranges else (["log", "queue"] if order == "asc" else ["queue", "log"])
    if after is not None and after[0] in phases:
        phases = phases[phases.index(after[0]) :]
    found: list[tuple[str, SessionEvent]] = []
    for phase in phases:
        start = after[1] if after is not None and after[0] == phase else None
        stmt = repository.page_query(
            session_id,
            queued=phase == "queue",
            descending=order == "desc",
            after=start,
            types=types,
            ranges=ranges,
        )
        found += [(phase, r) for r in await repository.fetch_page(db, stmt, limit + 1 - len(found))]
        if len(found) > limit:
            break
    page = found[:limit]
    next_key = _key_of(*page[-1]) if len(found) > limit and page else None
    return [to_wire(r) for _, r in page], next_key


async def raw_page(
    conn: RawConnection,
    session_id: str,
    *,
    limit: int,
    after: PageKey | None,
    order: Literal["asc", "desc"],
    of_session: bool = False,
) -> tuple[list[bytes], PageKey | None]:
    """``list_page`` without types or time ranges, read as plain rows (no ORM instances), each
    event as its JSON (``to_wire``'s dict serialised, kept per stored content: `RenderedEvents`).
    ``of_session``: an empty page unless ``session_id`` is a session (not a thread's row)."""
    phases = ["log", "queue"] if order == "asc" else ["queue", "log"]
    if after is not None and after[0] in phases:
        phases = phases[phases.index(after[0]) :]
    versions = conn.row_versions
    found: list[tuple[str, Row]] = []
    for phase in phases:
        start = after[1] if after is not None and after[0] == phase else None
        rows = await repository.raw_page(
            conn, session_id, queued=phase == "queue", descending=order == "desc", after=start,
            limit=limit + 1 - len(found), of_session=of_session, versions=versions,
        )  # fmt: skip
        found += [(phase, r) for r in rows]
        if len(found) > limit:
            break
    page = found[:limit]
    next_key = (page[-1][0], int(page[-1][1][0])) if len(found) > limit and page else None
    if not versions:
        return RENDERED.render([r for _, r in page]), next_key
    # (key, id, xmin) rows: only the events whose version has no kept JSON are read whole (one
    # more statement; an event deleted in between is left out, as a later read would).
    kept = [RENDERED.kept((r[1], r[2])) for _, r in page]
    missing = [r[1] for (_, r), k in zip(page, kept, strict=True) if k is None]
    if missing:
        rows = await repository.raw_rows(conn, missing)
        rendered = RENDERED.render([r[:5] for r in rows], [(r[1], r[5]) for r in rows])
        by_id = {r[1]: json for r, json in zip(rows, rendered, strict=True)}
        kept = [k if k is not None else by_id.get(r[1]) for (_, r), k in zip(page, kept, strict=True)]
    return [k for k in kept if k is not None], next_key


class RenderedEvents:
    """Events' JSON per stored content (id, type, data text, processed_at): a changed row is a new
    key, so nothing needs invalidating in any process. Bounded by what it holds (the keys' data
    texts and the JSON): at most ``max_bytes`` (emptied when full); an event larger than
    ``max_event_bytes`` (a long tool output) is rendered every time instead of kept."""

    def __init__(self, max_bytes: int = 32 * 1024 * 1024, max_event_bytes: int = 64 * 1024) -> None:
        self.max_bytes = max_bytes
        self.max_event_bytes = max_event_bytes
        self._json: dict[tuple[Any, ...], bytes] = {}
        self._versions: dict[tuple[str, int], bytes] = {}
        self._held = 0

    def kept(self, version: tuple[str, int]) -> bytes | None:
        """The kept JSON of an event's row version, (id, xmin) (``RawReads.row_versions``)."""
        return self._versions.get(version)

    def render(self, rows: Sequence[Row], versions: Sequence[tuple[str, int]] | None = None) -> list[bytes]:
        """Rows of (key, id, type, data text, processed_at) as each event's JSON; ``versions``:
        the rows' (id, xmin), to keep the JSON by as well (when it is kept)."""
        keys = [tuple(r[1:5]) for r in rows]
        found = [self._json.get(k) for k in keys]
        missing = [i for i, f in enumerate(found) if f is None]
        if missing:
            # The stored data texts of every missing event decoded in one pass (one JSON array).
            datas = from_json("[" + ",".join(_text(rows[i][3]) for i in missing) + "]")
            times: dict[Any, str | None] = {}  # the events of one step share their time
            for i, data in zip(missing, datas, strict=True):
                _, id_, type_, text, at = rows[i]
                shown = times[at] if at in times else times.setdefault(at, wire_time(at))
                found[i] = rendered = to_json({"id": id_, "type": type_, **data, "processed_at": shown})
                self._keep(keys[i], rendered, len(rendered) + len(_text(text)))
        if versions is not None:
            for key, version, json_ in zip(keys, versions, found, strict=True):
                if json_ is not None and key in self._json:  # kept (not over the per-event bound)
                    if len(self._versions) >= _MAX_VERSIONS:
                        self._versions.clear()
                    self._versions[version] = json_
        return [f for f in found if f is not None]

    def __len__(self) -> int:
        return len(self._json)

    def _keep(self, key: tuple[Any, ...], rendered: bytes, size: int) -> None:
        if size > self.max_event_bytes:
            return
        if self._held + size > self.max_bytes:
            self._json.clear()
            self._versions.clear()
            self._held = 0
        self._json[key] = rendered
        self._held += size


RENDERED = RenderedEvents()
# Versions name renderings kept in ``_json`` (the same bytes objects): bounded by count only.
_MAX_VERSIONS = 200_000


def _text(value: Any) -> str:
    """A stored JSON value's text (the drivers hand back text; a decoded value is re-encoded)."""
    return value if isinstance(value, str) else json.dumps(value)


def _key_of(phase: str, row: SessionEvent) -> PageKey:
    return (phase, int(row.seq or 0) if phase == "log" else row.pk)


async def has_queued_interrupt(db: AsyncSession, session_id: str) -> bool:
    return await repository.has_queued(db, session_id, "user.interrupt")
