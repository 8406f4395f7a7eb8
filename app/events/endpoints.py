"""HTTP endpoints for a session's events: send, list, and the live SSE stream."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query
from sse_starlette import EventSourceResponse

from app.api.deps import DatabaseDep, NotifierDep, ReadSession, SettingsDep, WriteSession
from app.api.query import array_param, range_param
from app.events import listing
from app.events.schemas import EventPage, SendEvents, SendEventsResponse
from app.events.stream_service import open_stream
from app.sessions import service as sessions
from app.shared.pagination import decode_cursor

router = APIRouter(prefix="/sessions/{session_id}/events", tags=["events"])

Types = Annotated[list[str] | None, Depends(array_param("types"))]
Deltas = Annotated[list[str] | None, Depends(array_param("event_deltas"))]
ProcessedAt = Annotated[dict[str, Any], Depends(range_param("created_at"))]


@router.post("", response_model=SendEventsResponse)
async def send_events(
    session_id: str, params: SendEvents, db: WriteSession, notifier: NotifierDep
) -> SendEventsResponse:
    """Send events to a session; they are echoed back with their ids."""
    return SendEventsResponse(data=await sessions.send_events(db, notifier, session_id, params.events))


@router.get("", response_model=EventPage)
async def list_events(
    session_id: str,
    db: ReadSession,
    types: Types,
    created_at: ProcessedAt,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    page: str | None = None,
    order: Literal["asc", "desc"] = "asc",
) -> EventPage:
    """List a session's processed events in log order (never deltas)."""
    return await listing.list_events(
        db,
        session_id,
        limit=limit,
        cursor=decode_cursor(page, order),
        order=order,
        types=types,
        ranges=created_at,
    )


@router.get("/stream", response_class=EventSourceResponse)
async def stream_events(
    session_id: str,
    database: DatabaseDep,
    notifier: NotifierDep,
    settings: SettingsDep,
    event_deltas: Deltas,
    last_event_id: Annotated[str | None, Header(alias="last-event-id")] = None,
) -> EventSourceResponse:
    """Follow a session live over SSE (see the replay rule in the README)."""
    frames = await open_stream(database, notifier, settings, session_id, event_deltas, last_event_id)
    return EventSourceResponse(frames, ping=settings.stream_heartbeat_seconds)
