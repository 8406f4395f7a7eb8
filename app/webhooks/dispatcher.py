"""The webhook sender: a loop service that drains the outbox (`MAS_WEBHOOKS_ENABLED`).

Every `mas serve` and `mas worker` process runs one; they share the outbox through row locks
(`SKIP LOCKED` on PostgreSQL), so each attempt is made by one process. A queued delivery wakes the
senders through the notifier after its commit; a retry is sent when it falls due (each round asks
when the next pending delivery is due). `MAS_WEBHOOK_POLL_SECONDS` is only the safety poll
(`MAS_MISSED_WAKEUP_POLL_SECONDS` while the notifier cannot hear every process). No transaction is held while
a request is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx

from app.config import Settings
from app.db.engine import Database
from app.events.notifier import Notifier
from app.shared.loops import AT_ONCE, LoopService
from app.webhooks import service
from app.webhooks.service import Outcome, RetryPolicy, Send

log = logging.getLogger(__name__)
_BATCH = 32


class WebhookDispatcher(LoopService):
    def __init__(self, settings: Settings, database: Database, notifier: Notifier) -> None:
        interval, enabled = settings.webhook_poll_seconds, settings.webhooks_enabled
        super().__init__("webhook-dispatcher", interval, enabled=enabled)
        self._db = database
        self._contended_seconds = settings.missed_wakeup_poll_seconds
        self._policy = RetryPolicy(
            max_attempts=settings.webhook_max_attempts,
            base_seconds=settings.webhook_retry_base_seconds,
            max_seconds=settings.webhook_retry_max_seconds,
            disable_after_failures=settings.webhook_disable_after_failures,
        )
        self._http = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
        self.wake_on(notifier, service.WAKE_TOPIC, settings.missed_wakeup_poll_seconds)

    async def on_stop(self) -> None:
        await self._http.aclose()

    async def run_once(self) -> float | None:
        """Send what is due; when to look again (at once after a full batch)."""
        async with self._db.read() as db:
            wait = await service.seconds_until_due(db)
        if wait is None or wait > 0:
            return wait
        # Then at once: the next round reads when the retries just scheduled fall due. Nothing
        # sent: another process claimed what was due (it retries it); look again shortly.
        return AT_ONCE if await self.send_due() else self._contended_seconds

    async def send_due(self) -> int:
        """Send what is due now; the number of attempts made."""
        async with self._db.unit_of_work() as db:
            sends = await service.claim_due(db, _BATCH)
        outcomes = await asyncio.gather(*(self._post(send) for send in sends))
        for send, outcome in zip(sends, outcomes, strict=True):
            async with self._db.unit_of_work() as db:
                await service.record(db, send, outcome, self._policy)
        return len(sends)

    async def _post(self, send: Send) -> Outcome:
        headers = service.signature_headers(send, int(time.time()))
        try:
            response = await self._http.post(send.url, content=send.payload.encode(), headers=headers)
        except httpx.HTTPError as exc:
            return Outcome(None, f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__)
        ok = 200 <= response.status_code < 300
        return Outcome(response.status_code, None if ok else f"HTTP {response.status_code}")


async def start_dispatcher(
    stack: contextlib.AsyncExitStack, settings: Settings, database: Database, notifier: Notifier
) -> WebhookDispatcher:
    dispatcher = WebhookDispatcher(settings, database, notifier)
    await dispatcher.start()
    stack.push_async_callback(dispatcher.stop)
    return dispatcher
