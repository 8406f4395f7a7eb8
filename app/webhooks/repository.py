"""Webhook endpoint and delivery rows. Queries only; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import WebhookDelivery, WebhookEndpoint


def add(db: AsyncSession, row: WebhookEndpoint | WebhookDelivery) -> None:
    db.add(row)


async def get_endpoint(
    db: AsyncSession, endpoint_id: str, *, for_update: bool = False
) -> WebhookEndpoint | None:
    query = select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
    row: WebhookEndpoint | None = await db.scalar(query.with_for_update() if for_update else query)
    return row


_ENABLED_KEY = "webhooks.enabled_endpoints"


async def enabled_endpoints(db: AsyncSession) -> Sequence[WebhookEndpoint]:
    """The enabled endpoints, read once per transaction (a session's create emits twice; no
    transaction that emits also adds or enables an endpoint). Their state is checked again at
    each call: a row disabled in this transaction (the same instance) is left out."""
    rows: Sequence[WebhookEndpoint] | None = db.info.get(_ENABLED_KEY)
    if rows is None:
        rows = (await db.scalars(select(WebhookEndpoint).where(WebhookEndpoint.state == "enabled"))).all()
        db.info[_ENABLED_KEY] = rows
    return [row for row in rows if row.state == "enabled"]


async def delete_endpoint(db: AsyncSession, row: WebhookEndpoint) -> None:
    await db.delete(row)


async def endpoints_page(
    db: AsyncSession, after: tuple[datetime, str] | None, limit: int
) -> Sequence[WebhookEndpoint]:
    query = select(WebhookEndpoint)
    if after is not None:
        query = query.where(tuple_(WebhookEndpoint.created_at, WebhookEndpoint.id) < after)
    query = query.order_by(WebhookEndpoint.created_at.desc(), WebhookEndpoint.id.desc()).limit(limit)
    return (await db.scalars(query)).all()


async def deliveries_page(
    db: AsyncSession, endpoint_id: str, after: tuple[datetime, str] | None, limit: int
) -> Sequence[WebhookDelivery]:
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if after is not None:
        query = query.where(tuple_(WebhookDelivery.created_at, WebhookDelivery.id) < after)
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit)
    return (await db.scalars(query)).all()


async def next_attempt_at(db: AsyncSession) -> datetime | None:
    """When the earliest pending delivery is due (the `status, next_attempt_at` index answers)."""
    query = select(func.min(WebhookDelivery.next_attempt_at)).where(WebhookDelivery.status == "pending")
    return await db.scalar(query)


async def take_due(db: AsyncSession, now: datetime, limit: int) -> Sequence[WebhookDelivery]:
    """Due deliveries, locked (`SKIP LOCKED`: processes sending at once take different ones)."""
    query = (
        select(WebhookDelivery)
        .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    return (await db.scalars(query)).all()


async def get_delivery(db: AsyncSession, delivery_id: str) -> WebhookDelivery | None:
    return await db.get(WebhookDelivery, delivery_id, with_for_update=True)


async def cancel_pending(db: AsyncSession, endpoint_id: str, now: datetime, reason: str) -> None:
    await db.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
        .values(status="canceled", last_error=reason, last_attempt_at=now)
    )


async def count_pending(db: AsyncSession) -> int:
    query = select(func.count()).where(WebhookDelivery.status == "pending")
    return int(await db.scalar(query) or 0)
