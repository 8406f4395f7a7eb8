"""Memory versions: every change to a memory, kept when the memory is deleted, redactable.

``record`` is how ``memories`` and ``sync`` write them. Redaction clears content, hash, size
and path for good, keeping who did what and when; the current version of a live memory cannot
be redacted (its content is still the memory's), so change or delete the memory first.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import models
from app.db.base import utcnow
from app.errors import InvalidRequest, NotFound
from app.ids import new_id
from app.memory_stores import repository
from app.memory_stores.repository import VersionFilters
from app.memory_stores.schemas import (
    OPERATIONS,
    Actor,
    ApiActor,
    MemoryVersion,
    MemoryVersionPage,
    Operation,
    SessionActor,
    View,
)
from app.memory_stores.service import get_row
from app.shared.pagination import (
    decode_cursor,
    decode_time_key,
    newest_first_page,
)

MAX_FULL_PAGE = 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


def sha256_text(content: str) -> str:
    return hashlib.sha256(content.encode("utf-8")).hexdigest()


def is_sha256(value: str) -> bool:
    return _SHA256.fullmatch(value) is not None


def record(
    db: AsyncSession,
    *,
    store_id: str,
    memory_id: str,
    operation: Operation,
    path: str,
    content: str | None,
    actor: Actor | None,
    now: datetime,
    conflict: bool = False,
) -> models.MemoryVersion:
    """Add one version; ``content`` is None for a deletion, ``actor`` None for a dream's write."""
    encoded = content.encode("utf-8") if content is not None else None
    row = models.MemoryVersion(
        id=new_id("memver"),
        memory_store_id=store_id,
        memory_id=memory_id,
        operation=operation,
        path=path,
        content=content,
        content_sha256=hashlib.sha256(encoded).hexdigest() if encoded is not None else None,
        content_size_bytes=len(encoded) if encoded is not None else None,
        created_at=now,
        created_by=actor.model_dump() if actor is not None else None,
        session_id=actor.session_id if isinstance(actor, SessionActor) else None,
        api_key_id=actor.api_key_id if isinstance(actor, ApiActor) else None,
        conflict=conflict,
        redacted_at=None,
        redacted_by=None,
    )
    repository.add(db, row)
    return row


def version_view(row: models.MemoryVersion, view: View) -> MemoryVersion:
    return MemoryVersion.model_validate(
        {
            "id": row.id,
            "memory_id": row.memory_id,
            "memory_store_id": row.memory_store_id,
            "operation": row.operation,
            "created_at": row.created_at,
            "content": row.content if view == "full" else None,
            "content_sha256": row.content_sha256,
            "content_size_bytes": row.content_size_bytes,
            "path": row.path,
            "created_by": row.created_by,
            "redacted_at": row.redacted_at,
            "redacted_by": row.redacted_by,
        }
    )


async def _get(db: AsyncSession, store_id: str, version_id: str) -> models.MemoryVersion:
    row = await repository.get_version(db, store_id, version_id)
    if row is None:
        raise NotFound(f"Memory version {version_id} not found in memory store {store_id}.")
    return row


async def get(db: AsyncSession, store_id: str, version_id: str, view: View) -> MemoryVersion:
    await get_row(db, store_id)
    return version_view(await _get(db, store_id, version_id), view)


async def list_versions(
    db: AsyncSession,
    store_id: str,
    *,
    filters: VersionFilters,
    service_account_id: str | None,
    created_at: dict[str, datetime],
    limit: int,
    page: str | None,
    view: View,
) -> MemoryVersionPage:
    """Newest first. Nothing here is written by service accounts, so that filter matches nothing."""
    await get_row(db, store_id)
    if filters.operation is not None and filters.operation not in OPERATIONS:
        raise InvalidRequest(f"operation: expected one of {', '.join(OPERATIONS)}, got {filters.operation!r}")
    if service_account_id is not None:
        return MemoryVersionPage(data=[], next_page=None)
    limit = min(limit, MAX_FULL_PAGE) if view == "full" else limit
    rows = await repository.list_versions(
        db,
        store_id,
        filters=filters,
        created_at=created_at,
        after=decode_time_key(decode_cursor(page, "desc")),
        limit=limit + 1,
        with_content=view == "full",
    )
    shown, next_page = newest_first_page(rows, limit)
    return MemoryVersionPage(data=[version_view(r, view) for r in shown], next_page=next_page)


async def redact(db: AsyncSession, store_id: str, version_id: str, actor: Actor) -> MemoryVersion:
    """Clear a version's content, hash, size and path (idempotent)."""
    await get_row(db, store_id, lock=True)
    row = await _get(db, store_id, version_id)
    if row.redacted_at is None:
        memory = await repository.get_memory(db, store_id, row.memory_id, with_content=False)
        if memory is not None and memory.memory_version_id == row.id:
            raise InvalidRequest(
                f"Memory version {row.id} is the current version of memory {memory.id}; update or delete "
                "the memory first, then redact this version."
            )
        row.content = row.content_sha256 = row.path = None
        row.content_size_bytes = None
        row.redacted_at = utcnow()
        row.redacted_by = actor.model_dump()
        await db.flush()
    return version_view(row, "full")
