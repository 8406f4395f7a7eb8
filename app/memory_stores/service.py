"""Memory stores: create, read, update, archive, delete. Services only flush.

An archived store stays readable; its memories can be read, deleted and their versions redacted,
but not created or changed, and new sessions cannot attach it. Deleting a store deletes its
memories and every version. Memories live in ``memories``, versions in ``versions``, and what a
session's mount writes back in ``sync``.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import models
from app.db.base import utcnow
from app.errors import InvalidRequest, NotFound
from app.ids import new_id
from app.memory_stores import repository
from app.memory_stores.schemas import (
    MemoryStore,
    MemoryStoreCreate,
    MemoryStoreDeleted,
    MemoryStorePage,
    MemoryStoreUpdate,
)
from app.shared.metadata import patch_metadata, validate_metadata
from app.shared.pagination import (
    decode_cursor,
    decode_time_key,
    newest_first_page,
)
from app.shared.text import check_single_line, utf8_size


def _view(row: models.MemoryStore) -> MemoryStore:
    return MemoryStore(
        id=row.id,
        name=row.name,
        description=row.description,
        metadata=row.metadata_,
        created_at=row.created_at,
        updated_at=row.updated_at,
        archived_at=row.archived_at,
    )


async def get_row(db: AsyncSession, store_id: str, *, lock: bool = False) -> models.MemoryStore:
    row = await repository.get_store(db, store_id, lock=lock)
    if row is None:
        raise NotFound(f"Memory store {store_id} not found.")
    return row


def archived_error(store_id: str) -> InvalidRequest:
    return InvalidRequest(
        f"Memory store {store_id} is archived: it is read-only (its memories can still be read and deleted)."
    )


def _description(value: str | None) -> str:
    if value:
        utf8_size(value, "description")
    return value or ""


async def create(db: AsyncSession, params: MemoryStoreCreate) -> MemoryStore:
    now = utcnow()
    row = models.MemoryStore(
        id=new_id("memstore"),
        name=check_single_line(params.name, "name"),
        description=_description(params.description),
        metadata_=validate_metadata(params.metadata or {}),
        created_at=now,
        updated_at=now,
        archived_at=None,
    )
    repository.add(db, row)
    await db.flush()
    return _view(row)


async def get(db: AsyncSession, store_id: str) -> MemoryStore:
    return _view(await get_row(db, store_id))


async def update(db: AsyncSession, store_id: str, patch: MemoryStoreUpdate) -> MemoryStore:
    """Apply the fields sent: a null name changes nothing, "" or null clears the description,
    and metadata is a patch (a string upserts its key, null deletes it)."""
    row = await get_row(db, store_id, lock=True)
    if row.archived_at is not None:
        raise archived_error(row.id)
    sent = patch.model_fields_set
    before = (row.name, row.description, dict(row.metadata_))
    if patch.name is not None:
        row.name = check_single_line(patch.name, "name")
    if "description" in sent:
        row.description = _description(patch.description)
    if "metadata" in sent:
        row.metadata_ = patch_metadata(row.metadata_, patch.metadata or {})
    if (row.name, row.description, row.metadata_) != before:
        row.updated_at = utcnow()
    await db.flush()
    return _view(row)


async def archive(db: AsyncSession, store_id: str) -> MemoryStore:
    """Archive for good (idempotent)."""
    row = await get_row(db, store_id, lock=True)
    if row.archived_at is None:
        row.archived_at = row.updated_at = utcnow()
        await db.flush()
    return _view(row)


async def delete(db: AsyncSession, store_id: str) -> MemoryStoreDeleted:
    """Delete the store with all its memories and their versions."""
    row = await get_row(db, store_id, lock=True)
    await repository.delete_store(db, row.id)
    await db.flush()
    return MemoryStoreDeleted(id=store_id)


async def list_stores(
    db: AsyncSession, *, created_at: dict[str, datetime], include_archived: bool, limit: int, page: str | None
) -> MemoryStorePage:
    """Newest first, ``limit`` per page, ``next_page`` null on the last page."""
    rows = await repository.list_stores(
        db,
        created_at=created_at,
        include_archived=include_archived,
        after=decode_time_key(decode_cursor(page, "desc")),
        limit=limit + 1,
    )
    shown, next_page = newest_first_page(rows, limit)
    return MemoryStorePage(data=[_view(r) for r in shown], next_page=next_page)
