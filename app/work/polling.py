"""The long poll: wait up to `block_ms` for a claimable item without holding a transaction.

A cheap read checks for work every `_CHECK_SECONDS`; only when there is some does a write
transaction claim it (so idle pollers never take SQLite's write lock). Several server processes
share one PostgreSQL queue this way with no cross-process signal.
"""

from __future__ import annotations

import asyncio
import time

from app.db.engine import Database
from app.work import service
from app.work.schemas import Work

_CHECK_SECONDS = 0.05


async def long_poll(
    database: Database,
    environment_id: str,
    *,
    worker_id: str | None,
    block_ms: int | None,
    reclaim_older_than_ms: int | None,
) -> Work | None:
    deadline = time.monotonic() + (block_ms or 0) / 1000
    first = True
    while True:
        async with database.read() as db:
            found = await service.has_work(db, environment_id, reclaim_older_than_ms)
        if found or (first and worker_id):
            # A named worker's first round writes even on an empty queue: `workers_polling` counts it.
            async with database.unit_of_work() as db:
                item = await service.claim(db, environment_id, worker_id, reclaim_older_than_ms)
            if item is not None:
                return item
            first = False
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        await asyncio.sleep(min(_CHECK_SECONDS, remaining))
