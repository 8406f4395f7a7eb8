"""Noticing a `user.interrupt` while a step works (a model stream, tool calls, a grader's request).

The API announces each queued interrupt through the notifier after commit (in this process
directly, from others over PostgreSQL `NOTIFY`), so a step wakes at once instead of reading the log
ten times a second. The log stays the truth: it is read when the announcement comes, once when
the watch starts (an interrupt queued just before), and every `interrupt_poll_seconds()` as the
safety net (a notification lost while the listener reconnects; a process that cannot hear the
others polls often).
"""

from __future__ import annotations

import asyncio
import contextlib

from app.agent_loop.deps import LoopDeps
from app.events import service as events


async def queued(deps: LoopDeps, session_id: str) -> bool:
    async with deps.database.read() as db:
        return await events.has_queued_interrupt(db, session_id)


async def wait_for_interrupt(deps: LoopDeps, session_id: str) -> None:
    """Return once a `user.interrupt` is queued for the session (or thread)."""
    with deps.notifier.interrupts(session_id) as announced:
        if await queued(deps, session_id):
            return
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(announced.wait(), deps.notifier.interrupt_poll_seconds())
            announced.clear()
            if await queued(deps, session_id):
                return
