"""Content blob rows. Queries only; the caller owns the transaction."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.base import utcnow
from app.db.engine import on_postgres
from app.db.models import ContentBlob


async def add_reference(db: AsyncSession, sha256: str) -> bool:
    """One more reference to stored content; False when there is no such content yet."""
    result = await db.execute(
        update(ContentBlob)
        .where(ContentBlob.sha256 == sha256)
        .values(refs=ContentBlob.refs + 1)
        .returning(ContentBlob.sha256)
    )
    return result.scalar_one_or_none() is not None


async def insert_or_reference(db: AsyncSession, sha256: str, size: int) -> None:
    """Count new content (its bytes are in the blob backend) with one reference; if a concurrent
    writer stored it first, count ours."""
    dialect = postgresql if on_postgres(db) else sqlite
    statement = dialect.insert(ContentBlob).values(sha256=sha256, size=size, refs=1, created_at=utcnow())
    await db.execute(
        statement.on_conflict_do_update(
            index_elements=[ContentBlob.sha256], set_={"refs": ContentBlob.refs + 1}
        )
    )


async def drop_reference(db: AsyncSession, sha256: str) -> int | None:
    """One reference fewer; the references left (None for unknown content). The row stays
    locked until the transaction ends, so a concurrent writer of the same bytes waits for us."""
    result = await db.execute(
        update(ContentBlob)
        .where(ContentBlob.sha256 == sha256)
        .values(refs=ContentBlob.refs - 1)
        .returning(ContentBlob.refs)
    )
    return result.scalar_one_or_none()


async def adopt(db: AsyncSession, found: list[tuple[str, int]]) -> list[str]:
    """Count content found in the backend without a row as unreferenced backend content (a row
    with no reference, which the sweep then removes under its lock); the digests adopted. A row
    being written by a concurrent writer makes this wait for it, then leaves it alone."""
    if not found:
        return []
    dialect = postgresql if on_postgres(db) else sqlite
    now = utcnow()
    statement = dialect.insert(ContentBlob).values(
        [{"sha256": sha, "size": size, "refs": 0, "created_at": now} for sha, size in found]
    )
    result = await db.execute(
        statement.on_conflict_do_nothing(index_elements=[ContentBlob.sha256]).returning(ContentBlob.sha256)
    )
    return list(result.scalars())


async def take_unreferenced(db: AsyncSession, limit: int) -> list[str]:
    """Delete (and so lock until commit) up to ``limit`` rows nobody references."""
    doomed = (
        select(ContentBlob.sha256)
        .where(ContentBlob.refs <= 0)
        .limit(limit)
        .scalar_subquery()
    )
    result = await db.execute(
        delete(ContentBlob)
        .where(ContentBlob.sha256.in_(doomed), ContentBlob.refs <= 0)
        .returning(ContentBlob.sha256)
    )
    return list(result.scalars())
