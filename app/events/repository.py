"""SQL for the session event log."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, TypedDict, cast

from sqlalchemy import BigInteger, Row, Select, Table, and_, bindparam, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Session, SessionEvent
from app.db.raw import RawConnection
from app.db.raw import Row as RawRow
from app.events.types import Harness

_SESSIONS = cast(Table, Session.__table__)
_EVENTS = cast(Table, SessionEvent.__table__)
# Built once: SQLAlchemy caches their compiled form, so each call only binds its values.
_ALLOCATE = (
    update(_SESSIONS)
    .where(_SESSIONS.c.id == bindparam("sid"))
    .values(last_seq=_SESSIONS.c.last_seq + bindparam("count", type_=BigInteger))
    .returning(_SESSIONS.c.last_seq)
)
_INSERT = insert(_EVENTS)
_HAS_QUEUED = (
    select(_EVENTS.c.pk)
    .where(
        _EVENTS.c.session_id == bindparam("sid"),
        _EVENTS.c.seq.is_(None),
        _EVENTS.c.type == bindparam("type"),
    )
    .limit(1)
)


async def allocate_seqs(db: AsyncSession, session_id: str, count: int) -> int:
    """Reserve `count` positions; returns the last. Locks the session row until commit, so
    positions of one session are committed in order (a reader never sees seq 6 before seq 5)."""
    result = await db.execute(_ALLOCATE, {"sid": session_id, "count": count})
    return int(result.scalar_one())


class EventColumns(TypedDict):
    """A ``session_events`` row's values, for an insert without ORM instances."""

    id: str
    session_id: str
    seq: int | None
    type: str
    data: dict[str, Any]  # JSON boundary: the event's wire fields as stored (held to the union)
    harness: Harness | None
    created_at: datetime
    processed_at: datetime | None


async def insert_rows(db: AsyncSession, rows: Sequence[EventColumns]) -> None:
    """Insert event rows (their column values) in one statement, without ORM instances."""
    await db.execute(_INSERT, list(rows))


async def notify(db: AsyncSession, channel: str, payload: str) -> None:
    """pg_notify inside the transaction: delivered at commit, dropped on rollback."""
    await db.execute(text("SELECT pg_notify(:channel, :payload)"), {"channel": channel, "payload": payload})


def add_all(db: AsyncSession, rows: Sequence[SessionEvent]) -> None:
    db.add_all(rows)


# The columns of an event as the agent loop reads it (`service.to_record`), without ORM instances:
# (seq, id, type, data, harness, processed_at). Built once, as `_ALLOCATE`.
# JSON boundary: `data` and `harness` as stored (typed by `service._record_of`).
RecordRow = Row[int | None, str, str, dict[str, Any], dict[str, Any] | None, datetime | None]
_RECORD_COLUMNS = (
    _EVENTS.c.seq,
    _EVENTS.c.id,
    _EVENTS.c.type,
    _EVENTS.c.data,
    _EVENTS.c.harness,
    _EVENTS.c.processed_at,
)
_RECORDS_AFTER = (
    select(*_RECORD_COLUMNS)
    .where(_EVENTS.c.session_id == bindparam("sid"), _EVENTS.c.seq > bindparam("seq"))
    .order_by(_EVENTS.c.seq)
)
_QUEUED = (
    select(*_RECORD_COLUMNS)
    .where(_EVENTS.c.session_id == bindparam("sid"), _EVENTS.c.seq.is_(None))
    .order_by(_EVENTS.c.pk)
)


_QUEUED_BY_IDS = select(_EVENTS.c.pk, _EVENTS.c.id, _EVENTS.c.type, _EVENTS.c.data).where(
    _EVENTS.c.session_id == bindparam("sid"),
    _EVENTS.c.seq.is_(None),
    _EVENTS.c.id.in_(bindparam("ids", expanding=True)),
)
_PLACE = (
    update(_EVENTS)
    .where(_EVENTS.c.pk == bindparam("row_pk"))
    .values(seq=bindparam("row_seq"), processed_at=bindparam("row_at"))
)


async def queued_by_ids(
    db: AsyncSession, session_id: str, ids: Sequence[str]
) -> Sequence[Row[int, str, str, dict[str, Any]]]:  # JSON boundary: `data` (as in `wire_after_seq`)
    """(pk, id, type, data) of the events among ``ids`` still queued (`pk`: for `place`)."""
    result = await db.execute(_QUEUED_BY_IDS, {"sid": session_id, "ids": list(ids)})
    return cast(Sequence[Row[int, str, str, dict[str, Any]]], result.all())


async def place(db: AsyncSession, positions: Sequence[tuple[int, int, datetime]]) -> None:
    """Give queued events (pk, seq, processed_at) their place in the log, in one statement."""
    await db.execute(_PLACE, [{"row_pk": pk, "row_seq": seq, "row_at": at} for pk, seq, at in positions])


async def records_after(db: AsyncSession, session_id: str, seq: int) -> Sequence[RecordRow]:
    """The processed events after `seq`, in log order."""
    result = await db.execute(_RECORDS_AFTER, {"sid": session_id, "seq": seq})
    return cast(Sequence[RecordRow], result.all())


async def wire_after_seq(
    db: AsyncSession, session_id: str, seq: int, limit: int
) -> Sequence[Row[int | None, str, str, dict[str, Any], datetime | None]]:  # JSON boundary: `data`
    """The wire columns of the processed events after `seq`: a Core select, no ORM instances
    (the stream's pages, read once and serialised once)."""
    stmt = (
        select(
            SessionEvent.seq, SessionEvent.id, SessionEvent.type, SessionEvent.data, SessionEvent.processed_at
        )
        .where(SessionEvent.session_id == session_id, SessionEvent.seq > seq)
        .order_by(SessionEvent.seq)
        .limit(limit)
    )
    return (await db.execute(stmt)).all()


async def queued(db: AsyncSession, session_id: str) -> Sequence[RecordRow]:
    """The client events not processed yet, in arrival order."""
    result = await db.execute(_QUEUED, {"sid": session_id})
    return cast(Sequence[RecordRow], result.all())


async def by_ids(db: AsyncSession, session_id: str, ids: Sequence[str]) -> Sequence[SessionEvent]:
    stmt = select(SessionEvent).where(SessionEvent.session_id == session_id, SessionEvent.id.in_(ids))
    return (await db.scalars(stmt)).all()


async def id_at(db: AsyncSession, session_id: str, seq: int) -> str | None:
    stmt = select(SessionEvent.id).where(SessionEvent.session_id == session_id, SessionEvent.seq == seq)
    return await db.scalar(stmt)


async def seq_of(db: AsyncSession, session_id: str, event_id: str) -> int | None:
    stmt = select(SessionEvent.seq).where(SessionEvent.session_id == session_id, SessionEvent.id == event_id)
    return await db.scalar(stmt)


async def raw_seq_of(conn: RawConnection, session_id: str, event_id: str) -> int | None:
    row = await conn.fetchrow(
        "SELECT seq FROM session_events WHERE session_id = $1 AND id = $2", session_id, event_id
    )
    return int(row[0]) if row is not None and row[0] is not None else None


def page_query(
    session_id: str,
    *,
    queued: bool,
    descending: bool,
    after: int | None,
    types: Sequence[str] | None,
    ranges: dict[str, datetime],
) -> Select[SessionEvent]:
    """Processed events ordered by `seq`, or (``queued``) queued ones ordered by arrival (`pk`)."""
    key = SessionEvent.pk if queued else SessionEvent.seq
    position = SessionEvent.seq.is_(None) if queued else SessionEvent.seq.is_not(None)
    conds = [SessionEvent.session_id == session_id, position]
    if after is not None:
        conds.append(key < after if descending else key > after)
    if types:
        conds.append(SessionEvent.type.in_(types))
    ops = {"gt": "__gt__", "gte": "__ge__", "lt": "__lt__", "lte": "__le__"}
    conds.extend(getattr(SessionEvent.processed_at, ops[op])(value) for op, value in ranges.items())
    return select(SessionEvent).where(and_(*conds)).order_by(key.desc() if descending else key.asc())


async def raw_page(
    conn: RawConnection,
    session_id: str,
    *,
    queued: bool,
    descending: bool,
    after: int | None,
    limit: int,
    of_session: bool = False,
    versions: bool = False,
) -> list[RawRow]:
    """``page_query`` without types or time ranges, as plain SQL: rows of (key, id, type, data
    text, processed_at), the key being `seq` (processed) or `pk` (queued). ``of_session``: no rows
    unless ``session_id`` is a session's row, not a thread's (checked in the same statement: on
    PostgreSQL one round trip, not two). ``versions``: rows of (key, id, xmin) instead
    (PostgreSQL: see ``RawReads.row_versions``)."""
    key = "pk" if queued else "seq"
    conds = ["session_id = $1", f"seq IS {'' if queued else 'NOT '}NULL"]
    if of_session:
        conds.append("EXISTS (SELECT 1 FROM sessions WHERE id = $1 AND parent_session_id IS NULL)")
    args: list[Any] = [session_id]
    if after is not None:
        args.append(after)
        conds.append(f"{key} {'<' if descending else '>'} $2")
    args.append(limit)
    sql = (
        f"SELECT {key}, id, {'xmin' if versions else 'type, data, processed_at'} FROM session_events "
        f"WHERE {' AND '.join(conds)} "
        f"ORDER BY {key} {'DESC' if descending else 'ASC'} LIMIT ${len(args)}"
    )
    return await conn.fetch(sql, *args)


async def raw_rows(conn: RawConnection, ids: Sequence[str]) -> list[RawRow]:
    """Rows of (0, id, type, data text, processed_at, xmin) of the events ``ids`` (PostgreSQL), in
    no order."""
    return await conn.fetch(
        "SELECT 0, id, type, data, processed_at, xmin FROM session_events WHERE id = ANY($1::varchar[])",
        list(ids),
    )


async def fetch_page(db: AsyncSession, stmt: Select[SessionEvent], limit: int) -> Sequence[SessionEvent]:
    return (await db.scalars(stmt.limit(limit))).all()


async def history(db: AsyncSession, session_id: str) -> Sequence[SessionEvent]:
    stmt = (
        select(SessionEvent)
        .where(SessionEvent.session_id == session_id, SessionEvent.seq.is_not(None))
        .order_by(SessionEvent.seq)
    )
    return (await db.scalars(stmt)).all()


async def has_queued(db: AsyncSession, session_id: str, event_type: str) -> bool:
    return await db.scalar(_HAS_QUEUED, {"sid": session_id, "type": event_type}) is not None
