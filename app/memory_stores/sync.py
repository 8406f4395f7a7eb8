"""A session's mount and the store: what to materialise, and how the session's writes come back.

The sandbox materialises ``mounted_memories`` under ``/mnt/memory/<slug>/`` and remembers each
file's ``content_sha256``. What the agent changed there comes back as ``SessionWrite``s carrying
the hash the session's copy started from (``base_sha256``). A write whose base is still the
memory's current content is applied as a version attributed to the session. One whose base is
stale (the memory was changed through the API, or by another session, meanwhile) is a conflict:
it is kept as a version attributed to the session with ``conflict`` set, but not applied, so a
concurrent update is never clobbered and the session's write is never lost. The caller reports
conflicts back to the agent, which can re-read the file and merge.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import models
from app.db.base import utcnow
from app.errors import ApiError
from app.ids import new_id
from app.memory_stores import memories, repository, versions
from app.memory_stores.paths import check_path
from app.memory_stores.schemas import Operation, SessionActor
from app.memory_stores.service import get_row

SyncStatus = Literal["applied", "unchanged", "conflict", "rejected"]
_STALE = "changed by someone else since this session read it, and the store kept that change"


@dataclass(frozen=True)
class MountedMemory:
    path: str
    content: str
    content_sha256: str
    memory_id: str
    memory_version_id: str


@dataclass(frozen=True)
class SessionWrite:
    """A file under the mount as the session left it."""

    path: str
    content: str | None  # None: the session deleted the file
    base_sha256: str | None  # the content the session's copy started from; None: the path was free


@dataclass(frozen=True)
class SyncOutcome:
    path: str
    status: SyncStatus
    memory_id: str | None = None
    memory_version_id: str | None = None
    message: str | None = None


async def mounted_memories(db: AsyncSession, store_id: str, batch: int = 100) -> AsyncIterator[MountedMemory]:
    """Every memory of the store with its content, in path order, ``batch`` rows at a time."""
    after: str | None = None
    while True:
        rows = await repository.memories_page(db, store_id, after=after, limit=batch)
        for row in rows:
            yield MountedMemory(row.path, row.content, row.content_sha256, row.id, row.memory_version_id)
        if len(rows) < batch:
            return
        after = rows[-1].path


async def current_content(db: AsyncSession, store_id: str, path: str) -> str | None:
    """The content of the memory at ``path`` now (None: no memory there)."""
    current = await repository.memory_at(db, store_id, path)
    return current.content if current is not None else None


async def apply_session_writes(
    db: AsyncSession, store_id: str, session_id: str, writes: Sequence[SessionWrite]
) -> list[SyncOutcome]:
    """Apply what a session wrote under its mount, one outcome per write, in order."""
    store = await get_row(db, store_id, lock=True)
    actor = SessionActor(session_id=session_id)
    outcomes = []
    for write in writes:
        if store.archived_at is not None:
            outcomes.append(
                SyncOutcome(write.path, "rejected", message=f"memory store {store.id} is archived")
            )
            continue
        try:
            outcomes.append(await _apply(db, store.id, actor, write))
        except ApiError as exc:  # a path or content no memory can hold
            outcomes.append(SyncOutcome(write.path, "rejected", message=exc.message))
        await db.flush()  # the next write of the batch sees this one
    return outcomes


async def _apply(db: AsyncSession, store_id: str, actor: SessionActor, write: SessionWrite) -> SyncOutcome:
    path = check_path(write.path)
    if write.content is not None:
        memories.check_content(write.content)
    current = await repository.memory_at(db, store_id, path)
    current_sha = current.content_sha256 if current is not None else None
    if write.content is None:
        if current is None:
            return SyncOutcome(path, "unchanged")
        if current_sha != write.base_sha256:
            return await _conflict(db, store_id, actor, write, current, "deleted", _STALE)
        return await _delete(db, actor, current)
    if current is not None and current_sha == versions.sha256_text(write.content):
        return SyncOutcome(path, "unchanged", current.id, current.memory_version_id)
    if current_sha != write.base_sha256:
        return await _conflict(db, store_id, actor, write, current, "modified", _STALE)
    if current is not None:
        version = memories.apply(db, current, path=path, content=write.content, actor=actor)
        return SyncOutcome(path, "applied", current.id, version.id)
    return await _create(db, store_id, actor, path, write.content)


async def _create(
    db: AsyncSession, store_id: str, actor: SessionActor, path: str, content: str
) -> SyncOutcome:
    blocked = await memories.path_conflict(db, store_id, path)
    if blocked is not None:
        write = SessionWrite(path, content, None)
        return await _conflict(db, store_id, actor, write, None, "created", blocked.message)
    if await repository.count_memories(db, store_id) >= memories.MAX_MEMORIES:
        message = f"the store holds {memories.MAX_MEMORIES:,} memories, the most a store can hold"
        return SyncOutcome(path, "rejected", message=message)
    now = utcnow()
    memory_id = new_id("mem")
    version = versions.record(
        db, store_id=store_id, memory_id=memory_id, operation="created", path=path, content=content,
        actor=actor, now=now,
    )  # fmt: skip
    repository.add(
        db,
        models.Memory(
            id=memory_id, memory_store_id=store_id, path=path, content=content,
            content_sha256=versions.sha256_text(content), content_size_bytes=len(content.encode("utf-8")),
            memory_version_id=version.id, created_at=now, updated_at=now,
        ),
    )  # fmt: skip
    return SyncOutcome(path, "applied", memory_id, version.id)


async def _delete(db: AsyncSession, actor: SessionActor, current: models.Memory) -> SyncOutcome:
    version = versions.record(
        db, store_id=current.memory_store_id, memory_id=current.id, operation="deleted", path=current.path,
        content=None, actor=actor, now=utcnow(),
    )  # fmt: skip
    await repository.delete_memory(db, current.id)
    return SyncOutcome(current.path, "applied", current.id, version.id)


async def _conflict(
    db: AsyncSession,
    store_id: str,
    actor: SessionActor,
    write: SessionWrite,
    current: models.Memory | None,
    operation: Operation,
    reason: str,
) -> SyncOutcome:
    """Keep the session's write as a version of the memory at that path, without applying it."""
    memory_id = (
        current.id if current is not None else await repository.last_memory_id_at(db, store_id, write.path)
    )
    version = versions.record(
        db, store_id=store_id, memory_id=memory_id or new_id("mem"), operation=operation, path=write.path,
        content=write.content, actor=actor, now=utcnow(), conflict=True,
    )  # fmt: skip
    message = f"{write.path}: {reason}; this session's version is kept as memory version {version.id}"
    return SyncOutcome(write.path, "conflict", version.memory_id, version.id, message)
