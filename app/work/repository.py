"""Work item and poller rows. Queries only; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, tuple_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.engine import on_postgres
from app.db.models import WorkItem, WorkPoller

LIVE = ("queued", "starting", "active", "stopping")
LEASED = ("starting", "active")


def add(db: AsyncSession, row: WorkItem) -> None:
    db.add(row)


async def get(db: AsyncSession, work_id: str, *, for_update: bool = False) -> WorkItem | None:
    query = select(WorkItem).where(WorkItem.id == work_id)
    if for_update:
        query = query.with_for_update()
    row: WorkItem | None = await db.scalar(query)
    return row


async def by_token_hash(db: AsyncSession, token_hash: str) -> WorkItem | None:
    row: WorkItem | None = await db.scalar(select(WorkItem).where(WorkItem.token_hash == token_hash))
    return row


async def live_for_session(db: AsyncSession, session_id: str) -> Sequence[WorkItem]:
    query = select(WorkItem).where(WorkItem.session_id == session_id, WorkItem.state.in_(LIVE))
    return (await db.scalars(query.with_for_update())).all()


def _claimable(environment_id: str, reclaim_before: datetime) -> Any:
    return (
        WorkItem.environment_id == environment_id,
        WorkItem.state == "queued",
        or_(WorkItem.polled_at.is_(None), WorkItem.polled_at < reclaim_before),
    )


async def has_claimable(
    db: AsyncSession, environment_id: str, reclaim_before: datetime, now: datetime
) -> bool:
    """Whether a poll would find something (a queued item, or a lease that ran out)."""
    queued = select(WorkItem.id).where(*_claimable(environment_id, reclaim_before)).limit(1)
    if await db.scalar(queued) is not None:
        return True
    expired = select(WorkItem.id).where(
        WorkItem.environment_id == environment_id,
        WorkItem.state.in_(LEASED),
        WorkItem.lease_expires_at < now,
    )
    return await db.scalar(expired.limit(1)) is not None


async def next_claimable(db: AsyncSession, environment_id: str, reclaim_before: datetime) -> WorkItem | None:
    """The oldest claimable item, locked (`SKIP LOCKED`: concurrent pollers take different items)."""
    query = (
        select(WorkItem)
        .where(*_claimable(environment_id, reclaim_before))
        .order_by(WorkItem.queued_at, WorkItem.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    row: WorkItem | None = await db.scalar(query)
    return row


async def requeue_expired(db: AsyncSession, environment_id: str, now: datetime) -> None:
    """Leases that ran out: a claimed item goes back to the queue, a stopping one is stopped."""
    expired = (WorkItem.environment_id == environment_id, WorkItem.lease_expires_at < now)
    await db.execute(
        update(WorkItem)
        .where(*expired, WorkItem.state.in_(LEASED))
        .values(
            state="queued",
            queued_at=now,
            polled_at=None,
            worker_id=None,
            acknowledged_at=None,
            started_at=None,
            last_heartbeat=None,
            lease_expires_at=None,
            token_hash=None,
        )
    )
    await db.execute(
        update(WorkItem)
        .where(*expired, WorkItem.state == "stopping")
        .values(state="stopped", stopped_at=now, lease_expires_at=None, token_hash=None)
    )


async def record_poller(db: AsyncSession, environment_id: str, worker_id: str, now: datetime) -> None:
    dialect = postgresql if on_postgres(db) else sqlite
    statement = dialect.insert(WorkPoller).values(
        environment_id=environment_id, worker_id=worker_id, last_polled_at=now
    )
    await db.execute(
        statement.on_conflict_do_update(
            index_elements=[WorkPoller.environment_id, WorkPoller.worker_id], set_={"last_polled_at": now}
        )
    )


async def stats(
    db: AsyncSession, environment_id: str, reclaim_before: datetime, now: datetime
) -> tuple[int, int, datetime | None]:
    """(depth, pending, oldest queued_at) of an environment's queue."""
    queued = (WorkItem.environment_id == environment_id, WorkItem.state == "queued")
    waiting = await db.scalar(select(func.count()).where(*_claimable(environment_id, reclaim_before)))
    expired = await db.scalar(
        select(func.count()).where(
            WorkItem.environment_id == environment_id,
            WorkItem.state.in_(LEASED),
            WorkItem.lease_expires_at < now,
        )
    )
    pending = await db.scalar(select(func.count()).where(*queued, WorkItem.polled_at >= reclaim_before))
    oldest: datetime | None = await db.scalar(select(func.min(WorkItem.queued_at)).where(*queued))
    return int(waiting or 0) + int(expired or 0), int(pending or 0), oldest


async def pollers_since(db: AsyncSession, environment_id: str, since: datetime) -> int:
    count = await db.scalar(
        select(func.count()).where(
            WorkPoller.environment_id == environment_id, WorkPoller.last_polled_at >= since
        )
    )
    return int(count or 0)


async def list_page(
    db: AsyncSession, environment_id: str, after: tuple[datetime, str] | None, limit: int
) -> Sequence[WorkItem]:
    query = select(WorkItem).where(WorkItem.environment_id == environment_id)
    if after is not None:
        query = query.where(tuple_(WorkItem.created_at, WorkItem.id) < after)
    query = query.order_by(WorkItem.created_at.desc(), WorkItem.id.desc()).limit(limit)
    return (await db.scalars(query)).all()


async def count_queued(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).where(WorkItem.state == "queued")) or 0)
