"""The webhook sender: a small service that drains the outbox (start/stop; `MAS_WEBHOOKS_ENABLED`).

Every `mas serve` and `mas worker` process runs one; they share the outbox through row locks
(`SKIP LOCKED` on PostgreSQL), so each attempt is made by one process. An idle round is one cheap
read every `MAS_WEBHOOK_POLL_SECONDS`. No transaction is held while a request is in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import httpx

from app.config import Settings
from app.db.engine import Database
from app.webhooks import service
from app.webhooks.service import Outcome, RetryPolicy, Send

log = logging.getLogger(__name__)
_BATCH = 32


class WebhookDispatcher:
    def __init__(self, settings: Settings, database: Database) -> None:
        self._db = database
        self._poll_seconds = settings.webhook_poll_seconds
        self._policy = RetryPolicy(
            max_attempts=settings.webhook_max_attempts,
            base_seconds=settings.webhook_retry_base_seconds,
            max_seconds=settings.webhook_retry_max_seconds,
            disable_after_failures=settings.webhook_disable_after_failures,
        )
        self._http = httpx.AsyncClient(timeout=settings.webhook_timeout_seconds, follow_redirects=False)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="webhook-dispatcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._http.aclose()

    async def _run(self) -> None:
        while True:
            try:
                sent = await self.run_once()
            except Exception:  # a bad round must not end delivery for good
                log.exception("webhook round failed")
                sent = 0
            if sent < _BATCH:
                await asyncio.sleep(self._poll_seconds)

    async def run_once(self) -> int:
        """Send what is due; the number of attempts made."""
        async with self._db.read() as db:
            if not await service.has_due(db):
                return 0
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


async def start_dispatcher(stack: contextlib.AsyncExitStack, settings: Settings, database: Database) -> None:
    if not settings.webhooks_enabled:
        return
    dispatcher = WebhookDispatcher(settings, database)
    dispatcher.start()
    stack.push_async_callback(dispatcher.stop)
