"""Environment key rows. Queries only; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import EnvironmentKey


async def find_by_hash(db: AsyncSession, key_hash: str) -> EnvironmentKey | None:
    row: EnvironmentKey | None = await db.scalar(
        select(EnvironmentKey).where(EnvironmentKey.key_hash == key_hash)
    )
    return row


async def get(db: AsyncSession, key_id: str) -> EnvironmentKey | None:
    return await db.get(EnvironmentKey, key_id)


async def list_page(
    db: AsyncSession, environment_id: str, after: tuple[datetime, str] | None, limit: int
) -> Sequence[EnvironmentKey]:
    query = select(EnvironmentKey).where(EnvironmentKey.environment_id == environment_id)
    if after is not None:
        query = query.where(tuple_(EnvironmentKey.created_at, EnvironmentKey.id) < after)
    query = query.order_by(EnvironmentKey.created_at.desc(), EnvironmentKey.id.desc()).limit(limit)
    return (await db.scalars(query)).all()


def add(db: AsyncSession, row: EnvironmentKey) -> None:
    db.add(row)
