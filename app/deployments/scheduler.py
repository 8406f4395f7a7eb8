"""The deployment scheduler: a loop service (`MAS_DEPLOYMENTS_SCHEDULER`) in every `mas serve` and
`mas worker` process. Each round fires the due deployments, each in its own transaction (the
compare-and-set in `service.fire_if_due` makes one process win each slot), then sleeps until the
next slot falls due, or until a deployment is created, rescheduled or unpaused (the notifier wakes
it after that commit). `MAS_DEPLOYMENT_POLL_SECONDS` is the safety poll."""

from __future__ import annotations

import contextlib
import logging

from app.config import Settings
from app.db.base import utcnow
from app.db.engine import Database
from app.deployments import service
from app.deployments.service import Timing
from app.events.notifier import Notifier
from app.shared.loops import AT_ONCE, LoopService

log = logging.getLogger(__name__)
_BATCH = 50


def timing(settings: Settings) -> Timing:
    return Timing(
        max_jitter_seconds=settings.deployment_max_jitter_seconds,
        missed_grace_seconds=settings.deployment_missed_grace_seconds,
    )


class DeploymentScheduler(LoopService):
    def __init__(self, settings: Settings, database: Database, notifier: Notifier) -> None:
        super().__init__(
            "deployment-scheduler", settings.deployment_poll_seconds, enabled=settings.deployments_scheduler
        )
        self._db = database
        self._notifier = notifier
        self._timing = timing(settings)
        self._contended_seconds = settings.missed_wakeup_poll_seconds
        self.wake_on(notifier, service.WAKE_TOPIC, settings.missed_wakeup_poll_seconds)

    async def run_once(self) -> float | None:
        """Fire what is due; when the next slot does."""
        if await self.fire_due() == _BATCH:
            return AT_ONCE
        async with self._db.read() as db:
            wait = await service.seconds_until_due(db, self.interval() or self._timing.max_jitter_seconds)
        # Still due after firing: another process holds it right now; look again shortly.
        return wait if wait is None or wait > 0 else self._contended_seconds

    async def fire_due(self) -> int:
        """Fire what is due now; the number of due deployments looked at."""
        async with self._db.read() as db:
            due = await service.due_ids(db, utcnow(), _BATCH)
        for deployment_id in due:
            async with self._db.unit_of_work() as db:
                await service.fire_if_due(db, self._notifier, deployment_id, self._timing)
        return len(due)


async def start_scheduler(
    stack: contextlib.AsyncExitStack, settings: Settings, database: Database, notifier: Notifier
) -> DeploymentScheduler:
    scheduler = DeploymentScheduler(settings, database, notifier)
    await scheduler.start()
    stack.push_async_callback(scheduler.stop)
    return scheduler
