"""The long poll: wait up to `block_ms` for a claimable item without holding a transaction.

A cheap read checks for work; only when there is some does a write transaction claim it (so
idle pollers never take SQLite's write lock). Between checks a waiting poll sleeps until an item is
queued: the commit that queues one announces the notifier's `work` topic, in this process and
(through PostgreSQL `NOTIFY`) in every other, so a waiting worker costs nothing and gets new work
at once. One more check at the deadline is the safety net (work that became claimable by time: an
unacknowledged claim past `reclaim_older_than_ms`, a lease that ran out); while the notifier may
miss other processes' announcements (a lost `LISTEN` connection, a separate `mas worker` on
SQLite) the poll looks every `UNHEARD_CHECK_SECONDS` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from app.db.engine import Database
from app.events.notifier import Notifier
from app.work import service
from app.work.schemas import Work

UNHEARD_CHECK_SECONDS = 0.05


async def long_poll(
    database: Database,
    notifier: Notifier,
    environment_id: str,
    *,
    worker_id: str | None,
    block_ms: int | None,
    reclaim_older_than_ms: int | None,
) -> Work | None:
    deadline = time.monotonic() + (block_ms or 0) / 1000
    first = True
    # Listening before the first check: work queued between a check and the wait still wakes it.
    with notifier.waiting(service.WAKE_TOPIC) as announced:
        while True:
            announced.clear()
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
            if not notifier.hears_everyone():
                remaining = min(UNHEARD_CHECK_SECONDS, remaining)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(announced.wait(), remaining)
