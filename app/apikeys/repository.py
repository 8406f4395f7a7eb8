from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import ApiKey


async def find_active_by_hash(db: AsyncSession, key_hash: str) -> ApiKey | None:
    row = await db.scalar(select(ApiKey).where(ApiKey.key_hash == key_hash))
    return row if row is not None and row.revoked_at is None else None


async def list_all(db: AsyncSession) -> Sequence[ApiKey]:
    return (await db.scalars(select(ApiKey).order_by(ApiKey.created_at))).all()


async def get(db: AsyncSession, key_id: str) -> ApiKey | None:
    return await db.get(ApiKey, key_id)


def add(db: AsyncSession, key: ApiKey) -> None:
    db.add(key)
