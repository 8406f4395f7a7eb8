"""What the database knows, for `/metrics`: sessions by status and the depth of every queue."""

from __future__ import annotations

from prometheus_client.core import Metric
from sqlalchemy.ext.asyncio import AsyncSession

from app.observability.metrics import gauge_families
from app.sessions import service as sessions
from app.webhooks import service as webhooks
from app.work import service as work


async def database_gauges(db: AsyncSession) -> list[Metric]:
    by_status, runnable = await sessions.counts(db)
    queues = {
        "sessions_runnable": runnable,
        "work_items": await work.queued_count(db),
        "webhook_deliveries": await webhooks.pending_count(db),
    }
    return gauge_families(by_status, queues)
