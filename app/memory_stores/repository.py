"""Memory store, memory and memory version rows. Queries only; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import defer

from app.db.models import Memory, MemoryStore, MemoryVersion


@dataclass(frozen=True)
class VersionFilters:
    memory_id: str | None = None
    operation: str | None = None
    session_id: str | None = None
    api_key_id: str | None = None


def add(db: AsyncSession, row: MemoryStore | Memory | MemoryVersion) -> None:
    db.add(row)


# --- stores -------------------------------------------------------------------------------------


async def get_store(db: AsyncSession, store_id: str, *, lock: bool = False) -> MemoryStore | None:
    query = select(MemoryStore).where(MemoryStore.id == store_id)
    return await db.scalar(query.with_for_update() if lock else query)


async def delete_store(db: AsyncSession, store_id: str) -> None:
    await db.execute(delete(MemoryVersion).where(MemoryVersion.memory_store_id == store_id))
    await db.execute(delete(Memory).where(Memory.memory_store_id == store_id))
    await db.execute(delete(MemoryStore).where(MemoryStore.id == store_id))


async def list_stores(
    db: AsyncSession,
    *,
    created_at: dict[str, datetime],
    include_archived: bool,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[MemoryStore]:
    """Newest first; ``after`` is the (created_at, id) of the last row of the previous page."""
    query = select(MemoryStore)
    if not include_archived:
        query = query.where(MemoryStore.archived_at.is_(None))
    if "gte" in created_at:
        query = query.where(MemoryStore.created_at >= created_at["gte"])
    if "lte" in created_at:
        query = query.where(MemoryStore.created_at <= created_at["lte"])
    if after is not None:
        query = query.where(
            or_(
                MemoryStore.created_at < after[0],
                and_(MemoryStore.created_at == after[0], MemoryStore.id < after[1]),
            )
        )
    query = query.order_by(MemoryStore.created_at.desc(), MemoryStore.id.desc()).limit(limit)
    return (await db.scalars(query)).all()


# --- memories -----------------------------------------------------------------------------------


async def get_memory(
    db: AsyncSession, store_id: str, memory_id: str, *, with_content: bool = True
) -> Memory | None:
    query = select(Memory).where(Memory.memory_store_id == store_id, Memory.id == memory_id)
    if not with_content:
        query = query.options(defer(Memory.content, raiseload=True))
    return await db.scalar(query)


async def memory_at(db: AsyncSession, store_id: str, path: str) -> Memory | None:
    return await db.scalar(select(Memory).where(Memory.memory_store_id == store_id, Memory.path == path))


async def in_the_way(db: AsyncSession, store_id: str, path: str, parents: Sequence[str]) -> Sequence[Memory]:
    """Memories that keep ``path`` from holding a memory: one at ``path`` itself, at one of its
    ``parents``, or below it (``path/...``: between ``path/`` and ``path0``, '0' following '/')."""
    query = select(Memory).where(
        Memory.memory_store_id == store_id,
        or_(
            Memory.path == path,
            Memory.path.in_(parents),
            and_(Memory.path > path + "/", Memory.path < path + "0"),
        ),
    )
    query = query.options(defer(Memory.content, raiseload=True)).order_by(Memory.path).limit(len(parents) + 3)
    return (await db.scalars(query)).all()


async def count_memories(db: AsyncSession, store_id: str) -> int:
    return int(await db.scalar(select(func.count()).where(Memory.memory_store_id == store_id)) or 0)


async def paths_below(db: AsyncSession, store_id: str, prefix: str) -> list[tuple[str, str]]:
    """``(path, id)`` of every memory below ``prefix``, in path order (a store holds at most 2,000)."""
    query = select(Memory.path, Memory.id).where(Memory.memory_store_id == store_id)
    if prefix != "/":
        # Every path starting with "/a/" sorts between "/a/" and "/a0" ('0' follows '/').
        query = query.where(Memory.path > prefix, Memory.path < prefix[:-1] + "0")
    return [(path, memory_id) for path, memory_id in await db.execute(query.order_by(Memory.path))]


async def memories_by_id(
    db: AsyncSession, store_id: str, memory_ids: Sequence[str], *, with_content: bool
) -> dict[str, Memory]:
    if not memory_ids:
        return {}
    query = select(Memory).where(Memory.memory_store_id == store_id, Memory.id.in_(memory_ids))
    if not with_content:
        query = query.options(defer(Memory.content, raiseload=True))
    return {row.id: row for row in await db.scalars(query)}


async def memories_page(
    db: AsyncSession, store_id: str, *, after: str | None, limit: int
) -> Sequence[Memory]:
    """Memories with their content in path order, ``limit`` after the path ``after``."""
    query = select(Memory).where(Memory.memory_store_id == store_id)
    if after is not None:
        query = query.where(Memory.path > after)
    return (await db.scalars(query.order_by(Memory.path).limit(limit))).all()


async def delete_memory(db: AsyncSession, memory_id: str) -> None:
    await db.execute(delete(Memory).where(Memory.id == memory_id))


# --- versions -----------------------------------------------------------------------------------


async def get_version(db: AsyncSession, store_id: str, version_id: str) -> MemoryVersion | None:
    query = select(MemoryVersion).where(
        MemoryVersion.memory_store_id == store_id, MemoryVersion.id == version_id
    )
    return await db.scalar(query)


async def last_memory_id_at(db: AsyncSession, store_id: str, path: str) -> str | None:
    """The memory that most recently had ``path``, deleted or not."""
    query = (
        select(MemoryVersion.memory_id)
        .where(MemoryVersion.memory_store_id == store_id, MemoryVersion.path == path)
        .order_by(MemoryVersion.created_at.desc(), MemoryVersion.id.desc())
        .limit(1)
    )
    return await db.scalar(query)


async def list_versions(
    db: AsyncSession,
    store_id: str,
    *,
    filters: VersionFilters,
    created_at: dict[str, datetime],
    after: tuple[datetime, str] | None,
    limit: int,
    with_content: bool,
) -> Sequence[MemoryVersion]:
    """Newest first, with the given filters matched exactly."""
    query = select(MemoryVersion).where(MemoryVersion.memory_store_id == store_id)
    for column, value in (
        (MemoryVersion.memory_id, filters.memory_id),
        (MemoryVersion.operation, filters.operation),
        (MemoryVersion.session_id, filters.session_id),
        (MemoryVersion.api_key_id, filters.api_key_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if "gte" in created_at:
        query = query.where(MemoryVersion.created_at >= created_at["gte"])
    if "lte" in created_at:
        query = query.where(MemoryVersion.created_at <= created_at["lte"])
    if after is not None:
        query = query.where(
            or_(
                MemoryVersion.created_at < after[0],
                and_(MemoryVersion.created_at == after[0], MemoryVersion.id < after[1]),
            )
        )
    if not with_content:
        query = query.options(defer(MemoryVersion.content, raiseload=True))
    query = query.order_by(MemoryVersion.created_at.desc(), MemoryVersion.id.desc()).limit(limit)
    return (await db.scalars(query)).all()
