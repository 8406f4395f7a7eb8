"""Memories: text documents at unique paths in a store. Services only flush.

Every write locks the store's row, so the path and count checks cannot race another writer.
A path is a file in the session's mount, so it can be neither a directory of other memories
nor below another memory (``/a`` and ``/a/b`` cannot both exist): such a write is a
``memory_path_conflict_error`` naming the memory in the way.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import models
from app.db.base import utcnow
from app.errors import InvalidRequest, MemoryPathConflict, MemoryPreconditionFailed, NotFound
from app.ids import new_id
from app.memory_stores import repository, versions
from app.memory_stores.paths import check_path, check_prefix, parents
from app.memory_stores.schemas import (
    Actor,
    Memory,
    MemoryCreate,
    MemoryDeleted,
    MemoryPage,
    MemoryPrefix,
    MemoryUpdate,
    View,
)
from app.memory_stores.service import archived_error, get_row
from app.shared.pagination import Cursor, decode_cursor, encode_cursor
from app.shared.text import utf8_size

MAX_CONTENT_BYTES = 102_400
MAX_MEMORIES = 2_000
MAX_FULL_PAGE = versions.MAX_FULL_PAGE


def memory_view(row: models.Memory, view: View) -> Memory:
    return Memory(
        id=row.id,
        memory_store_id=row.memory_store_id,
        path=row.path,
        content_sha256=row.content_sha256,
        content_size_bytes=row.content_size_bytes,
        memory_version_id=row.memory_version_id,
        created_at=row.created_at,
        updated_at=row.updated_at,
        content=row.content if view == "full" else None,
    )


def check_content(content: str, field: str = "content") -> int:
    """The content's UTF-8 size; 400 over the 100 kB limit or if it cannot be stored."""
    size = utf8_size(content, field)
    if size > MAX_CONTENT_BYTES:
        raise InvalidRequest(
            f"{field}: {size:,} bytes is over the {MAX_CONTENT_BYTES:,}-byte limit of a memory"
        )
    return size


async def writable_store(db: AsyncSession, store_id: str) -> models.MemoryStore:
    store = await get_row(db, store_id, lock=True)
    if store.archived_at is not None:
        raise archived_error(store.id)
    return store


def _conflict(message: str, memory: models.Memory) -> MemoryPathConflict:
    return MemoryPathConflict(message, details={"conflicting_memory_id": memory.id})


async def path_conflict(
    db: AsyncSession, store_id: str, path: str, *, moving: str | None = None
) -> MemoryPathConflict | None:
    """Why ``path`` cannot hold a memory (``moving`` is the memory being renamed there), if it cannot."""
    above = parents(path)
    for other in await repository.in_the_way(db, store_id, path, above):
        if other.id == moving:
            continue
        if other.path == path:
            return _conflict(f"path: {path} is already taken by memory {other.id}", other)
        if other.path in above:
            return _conflict(f"path: {other.path} is a memory, so it cannot also be a directory", other)
        return _conflict(f"path: {path} is a directory holding memory {other.path}", other)
    return None


async def _get(
    db: AsyncSession, store_id: str, memory_id: str, *, with_content: bool = True
) -> models.Memory:
    row = await repository.get_memory(db, store_id, memory_id, with_content=with_content)
    if row is None:
        raise NotFound(f"Memory {memory_id} not found in memory store {store_id}.")
    return row


async def create(
    db: AsyncSession, store_id: str, params: MemoryCreate, actor: Actor | None, view: View
) -> Memory:
    """A new memory at a free path (409 ``memory_path_conflict_error`` otherwise)."""
    path = check_path(params.path)
    content = params.content or ""
    size = check_content(content)
    store = await writable_store(db, store_id)
    conflict = await path_conflict(db, store.id, path)
    if conflict is not None:
        raise conflict
    if await repository.count_memories(db, store.id) >= MAX_MEMORIES:
        raise InvalidRequest(
            f"Memory store {store.id} holds {MAX_MEMORIES:,} memories, the most a store can hold."
        )
    now = utcnow()
    memory_id = new_id("mem")
    version = versions.record(
        db, store_id=store.id, memory_id=memory_id, operation="created", path=path, content=content,
        actor=actor, now=now,
    )  # fmt: skip
    row = models.Memory(
        id=memory_id,
        memory_store_id=store.id,
        path=path,
        content=content,
        content_sha256=versions.sha256_text(content),
        content_size_bytes=size,
        memory_version_id=version.id,
        created_at=now,
        updated_at=now,
    )
    repository.add(db, row)
    await db.flush()
    return memory_view(row, view)


async def get(db: AsyncSession, store_id: str, memory_id: str, view: View) -> Memory:
    await get_row(db, store_id)
    return memory_view(await _get(db, store_id, memory_id, with_content=view == "full"), view)


async def update(
    db: AsyncSession, store_id: str, memory_id: str, params: MemoryUpdate, actor: Actor, view: View
) -> Memory:
    """Change content, path (a rename keeps the id) or both; nothing changed makes no version."""
    new_path = check_path(params.path) if params.path is not None else None
    if params.content is not None:
        check_content(params.content)
    store = await writable_store(db, store_id)
    row = await _get(db, store.id, memory_id)
    if params.precondition is not None and params.precondition.content_sha256 != row.content_sha256:
        raise MemoryPreconditionFailed(
            f"Memory {row.id} has content_sha256 {row.content_sha256}, not the "
            f"{params.precondition.content_sha256} the precondition expects; read it again and retry."
        )
    path = new_path if new_path is not None else row.path
    content = params.content if params.content is not None else row.content
    if path == row.path and content == row.content:
        return memory_view(row, view)
    if path != row.path:
        conflict = await path_conflict(db, store.id, path, moving=row.id)
        if conflict is not None:
            raise conflict
    apply(db, row, path=path, content=content, actor=actor)
    await db.flush()
    return memory_view(row, view)


def apply(
    db: AsyncSession, row: models.Memory, *, path: str, content: str, actor: Actor | None
) -> models.MemoryVersion:
    """Make ``path``/``content`` the memory's current state through a ``modified`` version."""
    now = utcnow()
    version = versions.record(
        db, store_id=row.memory_store_id, memory_id=row.id, operation="modified", path=path,
        content=content, actor=actor, now=now,
    )  # fmt: skip
    row.path = path
    row.content = content
    row.content_sha256 = versions.sha256_text(content)
    row.content_size_bytes = len(content.encode("utf-8"))
    row.memory_version_id = version.id
    row.updated_at = now
    return version


async def delete(
    db: AsyncSession, store_id: str, memory_id: str, expected_sha256: str | None, actor: Actor
) -> MemoryDeleted:
    """Delete (archived stores too); its versions stay, ending with a ``deleted`` one."""
    if expected_sha256 is not None and not versions.is_sha256(expected_sha256):
        raise InvalidRequest("expected_content_sha256: must be 64 lowercase hexadecimal characters")
    store = await get_row(db, store_id, lock=True)
    row = await _get(db, store.id, memory_id, with_content=False)
    if expected_sha256 is not None and expected_sha256 != row.content_sha256:
        raise MemoryPreconditionFailed(
            f"Memory {row.id} has content_sha256 {row.content_sha256}, not {expected_sha256}; "
            "nothing was deleted."
        )
    versions.record(
        db, store_id=store.id, memory_id=row.id, operation="deleted", path=row.path, content=None,
        actor=actor, now=utcnow(),
    )  # fmt: skip
    await repository.delete_memory(db, row.id)
    await db.flush()
    return MemoryDeleted(id=memory_id)


async def put_at(db: AsyncSession, store_id: str, path: str, content: str, actor: Actor | None) -> None:
    """Create or change the memory at ``path`` (a dream's write)."""
    path = check_path(path)
    check_content(content)
    store = await writable_store(db, store_id)
    row = await repository.memory_at(db, store.id, path)
    if row is None:
        await create(db, store.id, MemoryCreate(path=path, content=content), actor, "basic")
    elif row.content != content:
        apply(db, row, path=path, content=content, actor=actor)
        await db.flush()


async def delete_at(db: AsyncSession, store_id: str, path: str, actor: Actor | None) -> bool:
    """Delete the memory at ``path``; whether there was one."""
    store = await writable_store(db, store_id)
    row = await repository.memory_at(db, store.id, check_path(path))
    if row is None:
        return False
    versions.record(
        db, store_id=store.id, memory_id=row.id, operation="deleted", path=row.path, content=None,
        actor=actor, now=utcnow(),
    )  # fmt: skip
    await repository.delete_memory(db, row.id)
    await db.flush()
    return True


# --- listing ------------------------------------------------------------------------------------


def _items(rows: list[tuple[str, str]], prefix: str, depth: int) -> list[tuple[str, str | None]]:
    """``(path, memory id)`` in path order; memories deeper than ``depth`` rolled up into one
    ``(directory/, None)`` item (paths sharing a prefix are contiguous in this order)."""
    items: list[tuple[str, str | None]] = []
    for path, memory_id in rows:
        segments = path[len(prefix) :].split("/")
        if depth == 0 or len(segments) <= depth:
            items.append((path, memory_id))
            continue
        directory = prefix + "/".join(segments[:depth]) + "/"
        if not items or items[-1] != (directory, None):
            items.append((directory, None))
    return items


async def list_memories(
    db: AsyncSession,
    store_id: str,
    *,
    path_prefix: str | None,
    depth: int,
    limit: int,
    page: str | None,
    view: View,
) -> MemoryPage:
    """Memories (and, with ``depth``, directory prefixes) in path order."""
    prefix = check_prefix(path_prefix) if path_prefix is not None else "/"
    if depth < 0:
        raise InvalidRequest("depth: must be 0 (everything below the prefix) or more")
    cursor = decode_cursor(page, "asc")
    after = cursor.key[0] if cursor is not None and cursor.key else None
    if cursor is not None and not isinstance(after, str):
        raise InvalidRequest("invalid page cursor")
    await get_row(db, store_id)
    limit = min(limit, MAX_FULL_PAGE) if view == "full" else limit
    items = _items(await repository.paths_below(db, store_id, prefix), prefix, depth)
    if after is not None:
        items = [item for item in items if item[0] > after]
    page_items = items[:limit]
    rows = await repository.memories_by_id(
        db, store_id, [m for _, m in page_items if m is not None], with_content=view == "full"
    )
    data: list[Memory | MemoryPrefix] = [
        memory_view(rows[m], view) if m is not None else MemoryPrefix(path=path)
        for path, m in page_items
        if m is None or m in rows
    ]
    next_page = encode_cursor(Cursor("asc", (page_items[-1][0],))) if len(items) > limit else None
    return MemoryPage(data=data, next_page=next_page)
