"""Paginated history of a session's events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from pydantic_core import to_json
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.raw import RawReads
from app.errors import InvalidRequest, NotFound
from app.events import service
from app.events.schemas import EVENT_TYPES, EventPage
from app.sessions import service as sessions
from app.shared.pagination import Cursor, decode_cursor, encode_cursor


def check_types(types: Sequence[str] | None) -> None:
    for value in types or ():
        if value not in EVENT_TYPES:
            raise InvalidRequest(f"types: {value!r} is not a valid event type")


async def list_events(
    db: AsyncSession,
    session_id: str,
    *,
    limit: int,
    cursor: Cursor | None,
    order: Literal["asc", "desc"],
    types: Sequence[str] | None,
    ranges: dict[str, datetime],
) -> EventPage:
    check_types(types)
    await sessions.load(db, session_id)
    return await _page(db, session_id, limit=limit, cursor=cursor, order=order, types=types, ranges=ranges)


async def render_events(
    raw: RawReads, session_id: str, *, limit: int, page: str | None, order: Literal["asc", "desc"]
) -> bytes:
    """The body of GET /v1/sessions/{session_id}/events without `types` or time ranges:
    ``list_events``'s page as JSON, read as plain rows and serialised once. The page's statement
    also checks that the session exists; only an empty page asks again, to tell a 404 from it."""
    cursor = decode_cursor(page, order)
    async with raw.snapshot() as conn:
        data, more_after = await service.raw_page(
            conn, session_id, limit=limit, after=_page_key(cursor), order=order, of_session=True
        )
        if not data and not await sessions.exists(conn, session_id):
            raise NotFound(f"Session {session_id} not found")
    next_page = encode_cursor(Cursor(order, more_after)) if more_after is not None else None
    return b"".join((b'{"data":[', b",".join(data), b'],"next_page":', to_json(next_page), b"}"))


async def list_thread_events(
    db: AsyncSession, session_id: str, thread_id: str, *, limit: int, cursor: Cursor | None
) -> EventPage:
    """A thread's own log (the session's log for the primary thread), oldest first."""
    log_id = await sessions.thread_log_id(db, session_id, thread_id)
    return await _page(db, log_id, limit=limit, cursor=cursor, order="asc", types=None, ranges={})


async def _page(
    db: AsyncSession,
    log_id: str,
    *,
    limit: int,
    cursor: Cursor | None,
    order: Literal["asc", "desc"],
    types: Sequence[str] | None,
    ranges: dict[str, datetime],
) -> EventPage:
    data, more_after = await service.list_page(
        db, log_id, limit=limit, after=_page_key(cursor), order=order, types=types, ranges=ranges
    )
    next_page = encode_cursor(Cursor(order, more_after)) if more_after is not None else None
    return EventPage(data=data, next_page=next_page)


def _page_key(cursor: Cursor | None) -> service.PageKey | None:
    if cursor is None:
        return None
    key = cursor.key
    if len(key) != 2 or key[0] not in ("log", "queue") or not isinstance(key[1], int):
        raise InvalidRequest("invalid page cursor")
    return (str(key[0]), int(key[1]))
