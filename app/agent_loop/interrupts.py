"""Noticing a `user.interrupt` while a step works (a model stream, tool calls, a grader's request).

The API announces each queued interrupt through the notifier after commit (in this process
directly, from others over PostgreSQL `NOTIFY`), so a step wakes at once instead of reading the log
ten times a second. The log stays the truth: it is read when the announcement comes, once when
the watch starts (an interrupt queued just before), and every `interrupt_poll_seconds()` as the
safety net (a notification lost while the listener reconnects; a process that cannot hear the
others polls often). A runner listens for the whole claim (`SessionRunner.run`), from before its
first step reads the queue: its watches then read the log at their start only if an interrupt
was announced since the last read (one read less per model request and tool step).
"""

from __future__ import annotations

import asyncio
import contextlib

from app.agent_loop.deps import LoopDeps
from app.events import service as events


async def queued(deps: LoopDeps, session_id: str) -> bool:
    async with deps.database.read() as db:
        return await events.has_queued_interrupt(db, session_id)


async def wait_for_interrupt(deps: LoopDeps, session_id: str, announced: asyncio.Event | None = None) -> None:
    """Return once a `user.interrupt` is queued for the session (or thread). ``announced``: set
    by the announcements since before the queue was last read (the claim's own), else None."""
    if announced is not None:
        return await _until_queued(deps, session_id, announced)
    with deps.notifier.interrupts(session_id) as own:
        if await queued(deps, session_id):
            return None
        return await _until_queued(deps, session_id, own)


async def _until_queued(deps: LoopDeps, session_id: str, announced: asyncio.Event) -> None:
    while True:
        if not announced.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(announced.wait(), deps.notifier.interrupt_poll_seconds())
        announced.clear()  # before the read: an announcement after it is not lost
        if await queued(deps, session_id):
            return
