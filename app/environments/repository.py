"""Environment rows. Queries only; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, bindparam, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Environment
from app.db.raw import RawReads, Row
from app.shared.environment_config import EnvironmentConfig


async def get(db: AsyncSession, environment_id: str, *, lock: bool = False) -> Environment | None:
    query = select(Environment).where(Environment.id == environment_id)
    return await db.scalar(query.with_for_update() if lock else query)


_CONFIG = select(Environment.config).where(Environment.id == bindparam("eid"))  # built once


async def config(db: AsyncSession, environment_id: str) -> EnvironmentConfig | None:
    """An environment's config alone (no ORM instance), None for an unknown id."""
    found: EnvironmentConfig | None = await db.scalar(_CONFIG, {"eid": environment_id})
    return None if found is None else found.copy()


async def configs(db: AsyncSession, *, live_or: set[str]) -> Sequence[EnvironmentConfig]:
    """The configs of environments not archived, and of those in `live_or` even if archived."""
    query = select(Environment.config).where(
        or_(Environment.archived_at.is_(None), Environment.id.in_(sorted(live_or)))
    )
    return [config.copy() for config in (await db.scalars(query)).all()]


async def view_row(raw: RawReads, environment_id: str) -> Row | None:
    """The columns an environment shows, in one plain statement (no ORM instance)."""
    return await raw.fetchrow(
        "SELECT id, name, description, config, metadata, scope, created_at, updated_at, archived_at "
        "FROM environments WHERE id = $1",
        environment_id,
    )


def add(db: AsyncSession, row: Environment) -> None:
    db.add(row)


async def delete(db: AsyncSession, row: Environment) -> None:
    await db.delete(row)


async def list_page(
    db: AsyncSession, *, include_archived: bool, after: tuple[datetime, str] | None, limit: int
) -> Sequence[Environment]:
    """Newest first; ``after`` is the (created_at, id) of the last row of the previous page."""
    query = select(Environment)
    if not include_archived:
        query = query.where(Environment.archived_at.is_(None))
    if after is not None:
        query = query.where(
            or_(
                Environment.created_at < after[0],
                and_(Environment.created_at == after[0], Environment.id < after[1]),
            )
        )
    query = query.order_by(Environment.created_at.desc(), Environment.id.desc()).limit(limit)
    return (await db.scalars(query)).all()
