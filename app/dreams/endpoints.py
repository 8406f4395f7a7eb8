"""/v1/dreams: create (queued for a worker's dream runner), list, retrieve, cancel, archive."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.api.deps import ReadSession, WriteSession
from app.api.query import array_param, range_param
from app.dreams import service
from app.dreams.schemas import Dream, DreamCreate, DreamPage

router = APIRouter(prefix="/dreams", tags=["dreams"])

Statuses = Annotated[list[str] | None, Depends(array_param("statuses"))]
CreatedAt = Annotated[dict[str, datetime], Depends(range_param("created_at", ("gt", "lt")))]


@router.post("", response_model=Dream)
async def create_dream(body: DreamCreate, db: WriteSession) -> Dream:
    """Create a dream: it is pending until a worker runs it."""
    return await service.create(db, body)


@router.get("", response_model=DreamPage)
async def list_dreams(
    db: ReadSession,
    statuses: Statuses,
    created_at: CreatedAt,
    include_archived: bool = False,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    page: str | None = None,
) -> DreamPage:
    """List dreams, newest first."""
    return await service.list_dreams(
        db,
        created_at=created_at,
        statuses=statuses,
        include_archived=include_archived,
        limit=limit,
        page=page,
    )


@router.get("/{dream_id}", response_model=Dream)
async def retrieve_dream(dream_id: str, db: ReadSession) -> Dream:
    """Retrieve a dream."""
    return await service.get(db, dream_id)


@router.post("/{dream_id}/cancel", response_model=Dream)
async def cancel_dream(dream_id: str, db: WriteSession) -> Dream:
    """Cancel a pending or running dream."""
    return await service.cancel(db, dream_id)


@router.post("/{dream_id}/archive", response_model=Dream)
async def archive_dream(dream_id: str, db: WriteSession) -> Dream:
    """Archive a completed, failed or canceled dream."""
    return await service.archive(db, dream_id)
