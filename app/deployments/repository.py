"""Deployment and run rows. Queries only; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Deployment, DeploymentRun


def add(db: AsyncSession, row: Deployment | DeploymentRun) -> None:
    db.add(row)


async def get(db: AsyncSession, deployment_id: str, *, for_update: bool = False) -> Deployment | None:
    query = select(Deployment).where(Deployment.id == deployment_id)
    row: Deployment | None = await db.scalar(query.with_for_update() if for_update else query)
    return row


async def get_run(db: AsyncSession, run_id: str) -> DeploymentRun | None:
    return await db.get(DeploymentRun, run_id)


async def page(
    db: AsyncSession,
    *,
    after: tuple[datetime, str] | None,
    limit: int,
    include_archived: bool,
    status: str | None,
    agent_id: str | None,
) -> Sequence[Deployment]:
    query = select(Deployment)
    if not include_archived:
        query = query.where(Deployment.archived_at.is_(None))
    if status is not None:
        query = query.where(Deployment.status == status)
    if agent_id is not None:
        query = query.where(Deployment.agent_id == agent_id)
    if after is not None:
        query = query.where(tuple_(Deployment.created_at, Deployment.id) < after)
    query = query.order_by(Deployment.created_at.desc(), Deployment.id.desc()).limit(limit)
    return (await db.scalars(query)).all()


async def runs_page(
    db: AsyncSession, *, after: tuple[datetime, str] | None, limit: int, deployment_id: str | None
) -> Sequence[DeploymentRun]:
    query = select(DeploymentRun)
    if deployment_id is not None:
        query = query.where(DeploymentRun.deployment_id == deployment_id)
    if after is not None:
        query = query.where(tuple_(DeploymentRun.created_at, DeploymentRun.id) < after)
    query = query.order_by(DeploymentRun.created_at.desc(), DeploymentRun.id.desc()).limit(limit)
    return (await db.scalars(query)).all()


async def due(db: AsyncSession, now: datetime, limit: int) -> Sequence[Deployment]:
    """Active, unarchived schedules whose next slot has come (jitter is checked by the caller)."""
    query = (
        select(Deployment)
        .where(
            Deployment.next_slot_at <= now,
            Deployment.status == "active",
            Deployment.archived_at.is_(None),
        )
        .order_by(Deployment.next_slot_at)
        .limit(limit)
    )
    return (await db.scalars(query)).all()


async def upcoming(db: AsyncSession, before: datetime) -> Sequence[tuple[datetime, float]]:
    """(next slot, jitter seconds) of the active schedules whose next slot comes before ``before``."""
    query = select(Deployment.next_slot_at, Deployment.jitter_seconds).where(
        Deployment.next_slot_at < before,
        Deployment.status == "active",
        Deployment.archived_at.is_(None),
    )
    return [(slot, float(jitter)) for slot, jitter in (await db.execute(query)).all() if slot is not None]


async def advance_slot(db: AsyncSession, deployment_id: str, expected: datetime, following: datetime) -> bool:
    """Compare-and-set: move the next slot from ``expected`` to ``following``; False if another
    process already moved it (it fired that slot)."""
    result = await db.execute(
        update(Deployment)
        .where(Deployment.id == deployment_id, Deployment.next_slot_at == expected)
        .values(next_slot_at=following)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0) == 1)
