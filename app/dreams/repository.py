"""Dream rows. Queries only; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Dream


def add(db: AsyncSession, row: Dream) -> None:
    db.add(row)


async def get(db: AsyncSession, dream_id: str, *, lock: bool = False) -> Dream | None:
    query = select(Dream).where(Dream.id == dream_id)
    return await db.scalar(query.with_for_update() if lock else query)


async def claimable(db: AsyncSession, now: datetime) -> Dream | None:
    """The oldest dream a worker may take, locked: pending, or running under a lease that expired
    (its worker died). One another worker holds is skipped on PostgreSQL."""
    expired = and_(
        Dream.status == "running", Dream.lease_expires_at.is_not(None), Dream.lease_expires_at < now
    )
    query = select(Dream).where(or_(Dream.status == "pending", expired))
    query = query.order_by(Dream.created_at, Dream.id).limit(1)
    return await db.scalar(query.with_for_update(skip_locked=True))


async def next_claimable_at(db: AsyncSession, now: datetime) -> datetime | None:
    """When a dream may next be claimed: now if one is pending, else when the earliest lease of a
    running dream expires (its worker may have died); None: no dream waits or runs."""
    if await db.scalar(select(Dream.id).where(Dream.status == "pending").limit(1)) is not None:
        return now
    expiry = select(func.min(Dream.lease_expires_at)).where(Dream.status == "running")
    return await db.scalar(expiry)


async def active_update_of(db: AsyncSession, store_id: str, statuses: Sequence[str]) -> Dream | None:
    """A dream in one of ``statuses`` that writes into ``store_id`` in place."""
    query = select(Dream).where(Dream.update_store_id == store_id, Dream.status.in_(statuses))
    return await db.scalar(query.limit(1))


async def list_page(
    db: AsyncSession,
    *,
    created_at: dict[str, datetime],
    statuses: Sequence[str] | None,
    include_archived: bool,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[Dream]:
    """Newest first; ``after`` is the (created_at, id) of the last row of the previous page."""
    query = select(Dream)
    if not include_archived:
        query = query.where(Dream.archived_at.is_(None))
    if statuses:
        query = query.where(Dream.status.in_(statuses))
    if "gt" in created_at:
        query = query.where(Dream.created_at > created_at["gt"])
    if "lt" in created_at:
        query = query.where(Dream.created_at < created_at["lt"])
    if after is not None:
        query = query.where(
            or_(Dream.created_at < after[0], and_(Dream.created_at == after[0], Dream.id < after[1]))
        )
    query = query.order_by(Dream.created_at.desc(), Dream.id.desc()).limit(limit)
    return (await db.scalars(query)).all()
