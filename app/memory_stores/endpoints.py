"""/v1/memory_stores, its memories and memory versions (beta `agent-memory-2026-07-22`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.api.auth import CurrentPrincipal
from app.api.betas import require_memory_beta
from app.api.deps import ReadSession, WriteSession
from app.api.query import range_param
from app.memory_stores import memories, service, versions
from app.memory_stores.repository import VersionFilters
from app.memory_stores.schemas import (
    ApiActor,
    Memory,
    MemoryCreate,
    MemoryDeleted,
    MemoryPage,
    MemoryStore,
    MemoryStoreCreate,
    MemoryStoreDeleted,
    MemoryStorePage,
    MemoryStoreUpdate,
    MemoryUpdate,
    MemoryVersion,
    MemoryVersionPage,
    SessionActor,
    View,
)

router = APIRouter(
    prefix="/memory_stores", tags=["memory stores"], dependencies=[Depends(require_memory_beta)]
)

Limit = Annotated[int, Query(ge=1, le=100)]
CreatedAt = Annotated[dict[str, datetime], Depends(range_param("created_at", ("gte", "lte")))]


async def _actor(principal: CurrentPrincipal) -> ApiActor | SessionActor:
    """Who a write is attributed to: the API key, or the session whose worker (its sessions
    token) synced the agent's change back."""
    if principal.kind == "work_token" and principal.session_id is not None:
        return SessionActor(session_id=principal.session_id)
    return ApiActor(api_key_id=principal.id)


Actor = Annotated[ApiActor | SessionActor, Depends(_actor)]


# --- stores -------------------------------------------------------------------------------------


@router.post("", response_model=MemoryStore)
async def create_store(body: MemoryStoreCreate, db: WriteSession) -> MemoryStore:
    """Create a memory store."""
    return await service.create(db, body)


@router.get("", response_model=MemoryStorePage)
async def list_stores(
    db: ReadSession,
    created_at: CreatedAt,
    include_archived: bool = False,
    limit: Limit = 20,
    page: str | None = None,
) -> MemoryStorePage:
    """List memory stores, newest first."""
    return await service.list_stores(
        db, created_at=created_at, include_archived=include_archived, limit=limit, page=page
    )


@router.get("/{memory_store_id}", response_model=MemoryStore)
async def retrieve_store(memory_store_id: str, db: ReadSession) -> MemoryStore:
    """Retrieve a memory store."""
    return await service.get(db, memory_store_id)


@router.post("/{memory_store_id}", response_model=MemoryStore)
async def update_store(memory_store_id: str, body: MemoryStoreUpdate, db: WriteSession) -> MemoryStore:
    """Update a store's name, description or metadata (a patch)."""
    return await service.update(db, memory_store_id, body)


@router.post("/{memory_store_id}/archive", response_model=MemoryStore)
async def archive_store(memory_store_id: str, db: WriteSession) -> MemoryStore:
    """Archive a store: read-only from now on, and no new session can attach it."""
    return await service.archive(db, memory_store_id)


@router.delete("/{memory_store_id}", response_model=MemoryStoreDeleted)
async def delete_store(memory_store_id: str, db: WriteSession) -> MemoryStoreDeleted:
    """Delete a store with its memories and their versions."""
    return await service.delete(db, memory_store_id)


# --- memories -----------------------------------------------------------------------------------


@router.post("/{memory_store_id}/memories", response_model=Memory)
async def create_memory(
    memory_store_id: str, body: MemoryCreate, db: WriteSession, actor: Actor, view: View = "basic"
) -> Memory:
    """Create a memory at a free path."""
    return await memories.create(db, memory_store_id, body, actor, view)


@router.get("/{memory_store_id}/memories", response_model=MemoryPage)
async def list_memories(
    memory_store_id: str,
    db: ReadSession,
    path_prefix: str | None = None,
    depth: Annotated[int, Query(ge=0)] = 0,
    limit: Limit = 20,
    page: str | None = None,
    view: View = "basic",
) -> MemoryPage:
    """List memories in path order; with `depth`, deeper ones are rolled up into `memory_prefix` items."""
    return await memories.list_memories(
        db, memory_store_id, path_prefix=path_prefix, depth=depth, limit=limit, page=page, view=view
    )


@router.get("/{memory_store_id}/memories/{memory_id}", response_model=Memory)
async def retrieve_memory(
    memory_store_id: str, memory_id: str, db: ReadSession, view: View = "full"
) -> Memory:
    """Retrieve a memory (with its content unless `view=basic`)."""
    return await memories.get(db, memory_store_id, memory_id, view)


@router.post("/{memory_store_id}/memories/{memory_id}", response_model=Memory)
async def update_memory(
    memory_store_id: str,
    memory_id: str,
    body: MemoryUpdate,
    db: WriteSession,
    actor: Actor,
    view: View = "basic",
) -> Memory:
    """Change a memory's content or path, optionally only if its content_sha256 is as expected."""
    return await memories.update(db, memory_store_id, memory_id, body, actor, view)


@router.delete("/{memory_store_id}/memories/{memory_id}", response_model=MemoryDeleted)
async def delete_memory(
    memory_store_id: str,
    memory_id: str,
    db: WriteSession,
    actor: Actor,
    expected_content_sha256: str | None = None,
) -> MemoryDeleted:
    """Delete a memory (its versions stay)."""
    return await memories.delete(db, memory_store_id, memory_id, expected_content_sha256, actor)


# --- versions -----------------------------------------------------------------------------------


@router.get("/{memory_store_id}/memory_versions", response_model=MemoryVersionPage)
async def list_versions(
    memory_store_id: str,
    db: ReadSession,
    created_at: CreatedAt,
    memory_id: str | None = None,
    operation: str | None = None,
    session_id: str | None = None,
    api_key_id: str | None = None,
    service_account_id: str | None = None,
    limit: Limit = 20,
    page: str | None = None,
    view: View = "basic",
) -> MemoryVersionPage:
    """List a store's memory versions, newest first."""
    filters = VersionFilters(
        memory_id=memory_id, operation=operation, session_id=session_id, api_key_id=api_key_id
    )
    return await versions.list_versions(
        db,
        memory_store_id,
        filters=filters,
        service_account_id=service_account_id,
        created_at=created_at,
        limit=limit,
        page=page,
        view=view,
    )


@router.get("/{memory_store_id}/memory_versions/{memory_version_id}", response_model=MemoryVersion)
async def retrieve_version(
    memory_store_id: str, memory_version_id: str, db: ReadSession, view: View = "full"
) -> MemoryVersion:
    """Retrieve a memory version."""
    return await versions.get(db, memory_store_id, memory_version_id, view)


@router.post("/{memory_store_id}/memory_versions/{memory_version_id}/redact", response_model=MemoryVersion)
async def redact_version(
    memory_store_id: str, memory_version_id: str, db: WriteSession, actor: Actor
) -> MemoryVersion:
    """Redact a version: its content, hash, size and path are cleared for good."""
    return await versions.redact(db, memory_store_id, memory_version_id, actor)
