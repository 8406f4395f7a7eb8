"""HTTP endpoints for sessions (thin: one service call each)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from app.api.deps import NotifierDep, ReadSession, WriteSession
from app.api.query import array_param, range_param
from app.sessions import service
from app.sessions.schemas import SessionCreate, SessionDeleted, SessionOut, SessionPage, SessionUpdate
from app.shared.pagination import decode_cursor
from app.shared.validation import INT32_MAX

router = APIRouter(prefix="/sessions", tags=["sessions"])

Statuses = Annotated[list[str] | None, Depends(array_param("statuses"))]
CreatedAt = Annotated[dict[str, datetime], Depends(range_param("created_at"))]
StatusName = Literal["rescheduling", "running", "idle", "terminated"]


@router.post("", response_model=SessionOut)
async def create_session(params: SessionCreate, db: WriteSession, notifier: NotifierDep) -> SessionOut:
    """Create a session from an agent and an environment."""
    return await service.create(db, notifier, params)


@router.get("", response_model=SessionPage)
async def list_sessions(
    db: ReadSession,
    statuses: Statuses,
    created_at: CreatedAt,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    page: str | None = None,
    order: Literal["asc", "desc"] = "desc",
    agent_id: str | None = None,
    agent_version: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
    include_archived: bool = False,
    deployment_id: str | None = None,
) -> SessionPage:
    """List sessions, newest first by default, with a bidirectional cursor."""
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
