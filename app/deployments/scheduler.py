"""The deployment scheduler: a small service (start/stop; `MAS_DEPLOYMENTS_SCHEDULER`) in every
`mas serve` and `mas worker` process. Each round reads the due deployments and fires each in its
own transaction; the compare-and-set in `service.fire_if_due` makes one process win each slot."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from app.config import Settings
from app.db.base import utcnow
from app.db.engine import Database
from app.deployments import service
from app.deployments.service import Timing
from app.events.notifier import Notifier

log = logging.getLogger(__name__)
_BATCH = 50


def timing(settings: Settings) -> Timing:
    return Timing(
        max_jitter_seconds=settings.deployment_max_jitter_seconds,
        missed_grace_seconds=settings.deployment_missed_grace_seconds,
    )


class DeploymentScheduler:
    def __init__(self, settings: Settings, database: Database, notifier: Notifier) -> None:
        self._db = database
        self._notifier = notifier
        self._timing = timing(settings)
        self._poll_seconds = settings.deployment_poll_seconds
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="deployment-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # one bad round must not stop the schedules
                log.exception("deployment scheduler round failed")
            await asyncio.sleep(self._poll_seconds)

    async def run_once(self) -> int:
        """Fire what is due; the number of runs this process recorded."""
        async with self._db.read() as db:
            due = await service.due_ids(db, utcnow(), _BATCH)
        fired = 0
        for deployment_id in due:
            async with self._db.unit_of_work() as db:
                run = await service.fire_if_due(db, self._notifier, deployment_id, self._timing)
            fired += run is not None
        return fired


async def start_scheduler(
    stack: contextlib.AsyncExitStack, settings: Settings, database: Database, notifier: Notifier
) -> None:
    if not settings.deployments_scheduler:
        return
    scheduler = DeploymentScheduler(settings, database, notifier)
    scheduler.start()
    stack.push_async_callback(scheduler.stop)
