"""HTTP endpoints for sessions and their events (thin: one service call each)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response
from pydantic import JsonValue

from app.api.deps import DatabaseDep, NotifierDep, ReadSession, SettingsDep, WriteSession
from app.api.fastpath import FastRead, FastStream, json_response, page_query
from app.api.query import array_param, range_param
from app.api.sse import EventStream
from app.config import Settings
from app.db.engine import Database
from app.events.notifier import Notifier
from app.events.schemas import EventPage, SendEvents, SendEventsResponse
from app.sessions import event_listing as listing
from app.sessions import service
from app.sessions.event_stream import open_stream, open_thread_stream
from app.sessions.repositories import RepoContext, Sealer
from app.sessions.resource_schemas import (
    FileResource,
    ResourceDeleted,
    ResourcePage,
    ResourceUpdate,
    SessionResource,
)
from app.sessions.schemas import SessionCreate, SessionDeleted, SessionOut, SessionPage, SessionUpdate
from app.sessions.thread_schemas import SessionThreadOut, ThreadPage
from app.shared.pagination import decode_cursor
from app.shared.validation import INT32_MAX

router = APIRouter(prefix="/sessions", tags=["sessions"])

Statuses = Annotated[list[str] | None, Depends(array_param("statuses"))]
CreatedAt = Annotated[dict[str, datetime], Depends(range_param("created_at"))]
StatusName = Literal["rescheduling", "running", "idle", "terminated"]


async def get_repo_context(request: Request) -> RepoContext:
    """How github_repository resources are checked and their tokens sealed."""
    seal: Sealer = request.app.state.repo_sealer
    return RepoContext(base_url=request.app.state.settings.github_base_url, seal=seal)


RepoContextDep = Annotated[RepoContext, Depends(get_repo_context)]


@router.post("", response_model=SessionOut)
async def create_session(
    params: SessionCreate, db: WriteSession, notifier: NotifierDep, repo_context: RepoContextDep
) -> SessionOut:
    """Create a session from an agent and an environment."""
    return await service.create(db, notifier, params, repo_context)


@router.get("", response_model=SessionPage)
async def list_sessions(
    db: ReadSession,
    database: DatabaseDep,
    statuses: Statuses,
    created_at: CreatedAt,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    page: str | None = None,
    order: Literal["asc", "desc"] = "desc",
    agent_id: str | None = None,
    agent_version: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
    include_archived: bool = False,
    deployment_id: str | None = None,
) -> SessionPage | Response:
    """List sessions, newest first by default, with a bidirectional cursor."""
    filters = (statuses, created_at, agent_id, agent_version, include_archived, deployment_id)
    if filters == (None, {}, None, None, False, None):
        return json_response(await service.render_list(database.raw, limit=limit, page=page, order=order))
    return await service.list_sessions(
        db,
        limit=limit,
        cursor=decode_cursor(page, order),
        order=order,
        agent_id=agent_id,
        agent_version=agent_version,
        statuses=service.check_statuses(statuses),
        include_archived=include_archived,
        ranges=created_at,
        deployment_id=deployment_id,
    )


@router.get("/{session_id}", response_model=SessionOut)
async def retrieve_session(session_id: str, db: ReadSession) -> SessionOut:
    """Retrieve a session."""
    return await service.get(db, session_id)


@router.post("/{session_id}", response_model=SessionOut)
async def update_session(
    session_id: str, params: SessionUpdate, db: WriteSession, notifier: NotifierDep
) -> SessionOut:
    """Update a session's title, metadata, or (while idle) its agent's tools and MCP servers."""
    return await service.update(db, notifier, session_id, params)


@router.post("/{session_id}/archive", response_model=SessionOut)
async def archive_session(session_id: str, db: WriteSession, notifier: NotifierDep) -> SessionOut:
    """Archive an idle session: it terminates and accepts no new events."""
    return await service.archive(db, notifier, session_id)


@router.delete("/{session_id}", response_model=SessionDeleted)
async def delete_session(session_id: str, db: WriteSession, notifier: NotifierDep) -> SessionDeleted:
    """Delete a session and its event log; open streams receive `session.deleted` and close."""
    return await service.delete(db, notifier, session_id)


@router.post("/{session_id}/resources", response_model=FileResource)
async def add_resource(
    # The raw body, checked by `resources.parse_params` (its messages name the field).
    session_id: str, params: Annotated[dict[str, JsonValue], Body()], db: WriteSession
) -> FileResource:
    """Mount one more file in a session (`{type: "file", file_id, mount_path?}`)."""
    return await service.add_resource(db, session_id, params)


@router.get("/{session_id}/resources", response_model=ResourcePage)
async def list_resources(
    session_id: str,
    db: ReadSession,
    limit: Annotated[int | None, Query(ge=1, le=1000)] = None,
    page: str | None = None,
) -> ResourcePage:
    """List a session's resources (all of them unless `limit` is given)."""
    return await service.list_resources(db, session_id, limit, page)


@router.get("/{session_id}/resources/{resource_id}", response_model=SessionResource)
async def retrieve_resource(session_id: str, resource_id: str, db: ReadSession) -> SessionResource:
    """Retrieve a session resource."""
    return await service.get_resource(db, session_id, resource_id)


@router.post("/{session_id}/resources/{resource_id}", response_model=SessionResource)
async def update_resource(
    session_id: str,
    resource_id: str,
    params: ResourceUpdate,
    db: WriteSession,
    repo_context: RepoContextDep,
) -> SessionResource:
    """Rotate a github_repository resource's `authorization_token`."""
    return await service.update_resource(db, session_id, resource_id, params, repo_context)


@router.delete("/{session_id}/resources/{resource_id}", response_model=ResourceDeleted)
async def delete_resource(session_id: str, resource_id: str, db: WriteSession) -> ResourceDeleted:
    """Remove a resource from a session (a file's session copy is deleted with it)."""
    return await service.delete_resource(db, session_id, resource_id)


# --- a session's events: send, list, and the live SSE stream -------------------------------------

events_router = APIRouter(prefix="/sessions/{session_id}/events", tags=["events"])

Types = Annotated[list[str] | None, Depends(array_param("types"))]
Deltas = Annotated[list[str] | None, Depends(array_param("event_deltas"))]
# A watcher (the console, `mas sessions tail`): reads like any stream, never moves the watermark.
Observer = Annotated[bool, Header(alias="x-mas-observer")]
ProcessedAt = Annotated[dict[str, datetime], Depends(range_param("created_at"))]


@events_router.post("", response_model=SendEventsResponse)
async def send_events(
    session_id: str, params: SendEvents, db: WriteSession, notifier: NotifierDep
) -> SendEventsResponse:
    """Send events to a session; they are echoed back with their ids."""
    return SendEventsResponse(data=await service.send_events(db, notifier, session_id, params.events))


@events_router.get("", response_model=EventPage)
async def list_events(
    session_id: str,
    db: ReadSession,
    database: DatabaseDep,
    types: Types,
    created_at: ProcessedAt,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    page: str | None = None,
    order: Literal["asc", "desc"] = "asc",
) -> EventPage | Response:
    """List a session's processed events in log order (never deltas)."""
    if types is None and not created_at:
        body = await listing.render_events(database.raw, session_id, limit=limit, page=page, order=order)
        return json_response(body)
    return await listing.list_events(
        db,
        session_id,
        limit=limit,
        cursor=decode_cursor(page, order),
        order=order,
        types=types,
        ranges=created_at,
    )


@events_router.get("/stream", response_class=EventStream)
async def stream_events(
    session_id: str,
    database: DatabaseDep,
    notifier: NotifierDep,
    settings: SettingsDep,
    event_deltas: Deltas,
    last_event_id: Annotated[str | None, Header(alias="last-event-id")] = None,
    observer: Observer = False,
) -> EventStream:
    """Follow a session live over SSE (see the replay rule in the README)."""
    frames = await open_stream(
        database, notifier, settings, session_id, event_deltas, last_event_id, observer
    )
    return EventStream(frames, settings.stream_heartbeat_seconds)


# --- threads of a multi-agent session ------------------------------------------------------------

threads_router = APIRouter(prefix="/sessions/{session_id}/threads", tags=["threads"])


@threads_router.get("", response_model=ThreadPage)
async def list_threads(
    session_id: str,
    db: ReadSession,
    statuses: Statuses,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    page: str | None = None,
) -> ThreadPage:
    """List a session's threads: the primary thread first, then child threads by creation."""
    return await service.list_threads(
        db, session_id, limit=limit, cursor=decode_cursor(page, "asc"), statuses=statuses
    )


@threads_router.get("/{thread_id}", response_model=SessionThreadOut)
async def retrieve_thread(session_id: str, thread_id: str, db: ReadSession) -> SessionThreadOut:
    """Retrieve a thread of a session."""
    return await service.get_thread(db, session_id, thread_id)


@threads_router.post("/{thread_id}/archive", response_model=SessionThreadOut)
async def archive_thread(
    session_id: str, thread_id: str, db: WriteSession, notifier: NotifierDep
) -> SessionThreadOut:
    """Archive an idle child thread: it terminates and receives no more messages."""
    return await service.archive_thread(db, notifier, session_id, thread_id)


@threads_router.get("/{thread_id}/events", response_model=EventPage)
async def list_thread_events(
    session_id: str,
    thread_id: str,
    db: ReadSession,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
    page: str | None = None,
) -> EventPage:
    """List a thread's events in log order."""
    return await listing.list_thread_events(
        db, session_id, thread_id, limit=limit, cursor=decode_cursor(page, "asc")
    )


@threads_router.get("/{thread_id}/stream", response_class=EventStream)
async def stream_thread_events(
    session_id: str,
    thread_id: str,
    database: DatabaseDep,
    notifier: NotifierDep,
    settings: SettingsDep,
    event_deltas: Deltas,
    last_event_id: Annotated[str | None, Header(alias="last-event-id")] = None,
    observer: Observer = False,
) -> EventStream:
    """Follow one thread live over SSE (the replay rule of session streams applies)."""
    frames = await open_thread_stream(
        database, notifier, settings, session_id, thread_id, event_deltas, last_event_id, observer
    )
    return EventStream(frames, settings.stream_heartbeat_seconds)


async def _render_sessions(
    db: Database, *, limit: int, page: str | None, order: Literal["asc", "desc"]
) -> bytes:
    return await service.render_list(db.raw, limit=limit, page=page, order=order)


async def _render_events(
    db: Database, session_id: str, *, limit: int, page: str | None, order: Literal["asc", "desc"]
) -> bytes:
    return await listing.render_events(db.raw, session_id, limit=limit, page=page, order=order)


async def _open_stream(
    database: Database, notifier: Notifier, settings: Settings, session_id: str, *, last_event_id: str | None
) -> AsyncIterator[bytes]:
    return await open_stream(database, notifier, settings, session_id, None, last_event_id)


# Served by app.api.fastpath before FastAPI's router (the same bytes as the routes above).
FAST_STREAMS = (FastStream("/sessions/{session_id}/events/stream", _open_stream),)
FAST_READS = (
    FastRead("/sessions", _render_sessions, page_query(100, 20, "desc")),
    FastRead("/sessions/{session_id}/events", _render_events, page_query(1000, 1000, "asc")),
)
