"""File rows. Queries only; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import StoredFile


def add(db: AsyncSession, row: StoredFile) -> None:
    db.add(row)


async def get(db: AsyncSession, file_id: str, *, lock: bool = False) -> StoredFile | None:
    query = select(StoredFile).where(StoredFile.id == file_id)
    return await db.scalar(query.with_for_update() if lock else query)


async def get_many(db: AsyncSession, file_ids: Sequence[str]) -> list[StoredFile]:
    query = select(StoredFile).where(StoredFile.id.in_(file_ids))
    return list(await db.scalars(query.order_by(StoredFile.created_at.desc(), StoredFile.id.desc())))


async def page(
    db: AsyncSession,
    *,
    limit: int,
    scope_id: str | None,
    older_than: tuple[datetime, str] | None,
    newer_than: tuple[datetime, str] | None,
) -> list[StoredFile]:
    """Up to ``limit`` rows newest first, after (``older_than``) or before (``newer_than``) a
    position. With ``newer_than`` the rows nearest to that position are taken."""
    query = select(StoredFile)
    if scope_id is not None:
        query = query.where(StoredFile.scope_session_id == scope_id)
    at, key = StoredFile.created_at, StoredFile.id
    if older_than is not None:
        when, row_id = older_than
        query = query.where(or_(at < when, and_(at == when, key < row_id)))
    if newer_than is not None:
        when, row_id = newer_than
        query = query.where(or_(at > when, and_(at == when, key > row_id)))
        rows = await db.scalars(query.order_by(at.asc(), key.asc()).limit(limit))
        return list(reversed(list(rows)))
    return list(await db.scalars(query.order_by(at.desc(), key.desc()).limit(limit)))


async def uploaded_bytes(db: AsyncSession) -> int:
    """Bytes held by uploads (session copies and outputs do not count against the quota)."""
    query = select(func.coalesce(func.sum(StoredFile.size_bytes), 0)).where(
        StoredFile.origin == "upload", StoredFile.sha256.is_not(None)
    )
    return int(await db.scalar(query) or 0)


async def remove(db: AsyncSession, file_id: str) -> None:
    await db.execute(delete(StoredFile).where(StoredFile.id == file_id))


async def of_session(db: AsyncSession, session_id: str) -> list[StoredFile]:
    return list(await db.scalars(select(StoredFile).where(StoredFile.scope_session_id == session_id)))


async def expired(db: AsyncSession, now: datetime, limit: int) -> list[StoredFile]:
    query = select(StoredFile).where(StoredFile.expires_at <= now, StoredFile.sha256.is_not(None))
    return list(await db.scalars(query.limit(limit).with_for_update(skip_locked=True)))


async def forget_content(db: AsyncSession, file_id: str) -> None:
    await db.execute(update(StoredFile).where(StoredFile.id == file_id).values(sha256=None))


async def output_of(db: AsyncSession, session_id: str, path: str) -> StoredFile | None:
    query = select(StoredFile).where(
        StoredFile.scope_session_id == session_id,
        StoredFile.origin == "output",
        StoredFile.filename == path,
    )
    return await db.scalar(query.with_for_update())


async def output_digests(db: AsyncSession, session_id: str) -> list[tuple[str, str, int]]:
    query = select(StoredFile.filename, StoredFile.sha256, StoredFile.size_bytes).where(
        StoredFile.scope_session_id == session_id,
        StoredFile.origin == "output",
        StoredFile.sha256.is_not(None),
    )
    return [
        (path, str(digest), size)
        for path, digest, size in await db.execute(query.order_by(StoredFile.filename))
    ]


async def output_sizes(db: AsyncSession, session_id: str) -> dict[str, int]:
    query = select(StoredFile.filename, StoredFile.size_bytes).where(
        StoredFile.scope_session_id == session_id,
        StoredFile.origin == "output",
        StoredFile.sha256.is_not(None),
    )
    return {path: size for path, size in await db.execute(query)}
