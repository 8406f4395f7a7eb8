"""Producing turns exactly as the worker does, until tests can use the real worker.

`steps` holds the worker's side as plain coroutines over a `Database` and a `Notifier`: one unit
of work per step, the same service calls (`transitions.start_running`, `events.mark_processed`,
`events.append`, `transitions.go_idle`). `InProcessWorker` runs them inside a test server's own
process and event loop, so its streams are told through the same notifier the worker would use;
`python -m tests.support.turns` runs them in a separate process (its own Database and Notifier;
on PostgreSQL the appends reach other processes through NOTIFY).

Tests talk to a `TurnProducer`: "the events I just sent should now be answered". A producer
backed by the real worker needs to do nothing there, so it can be swapped in.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol, TypeVar

from app.db.engine import Database
from app.events import service as events
from app.events.notifier import Notifier, PreviewFrame
from app.events.types import EventRecord, SpanModelUsage, StopReason
from app.sessions import service as sessions
from app.sessions import transitions
from tests.support.server import ServerThread

T = TypeVar("T")
Wire = EventRecord
END_TURN: StopReason = {"type": "end_turn"}
MODEL_USAGE: SpanModelUsage = {
    "input_tokens": 10,
    "output_tokens": 5,
    "cache_read_input_tokens": 0,
    "cache_creation_input_tokens": 0,
}


class TurnProducer(Protocol):
    async def turn(self, session_id: str) -> None:
        """Answer what the session was sent; returns once the turn is in the log (or under way)."""


class steps:
    @staticmethod
    async def start(database: Database, notifier: Notifier, session_id: str) -> list[Wire]:
        """Take the queued input: status running, then the input gets its place in the log."""
        async with database.unit_of_work() as db:
            row = await sessions.load(db, session_id, for_update=True)
            queued = await events.queued(db, session_id)
            out = await transitions.start_running(db, notifier, row)
            out += await events.mark_processed(db, notifier, session_id, [e["id"] for e in queued])
            row.wake_at = None
        return out

    @staticmethod
    async def reply(database: Database, notifier: Notifier, session_id: str, text: str) -> list[Wire]:
        """One model request: its span start, then the message and the span end."""
        async with database.unit_of_work() as db:
            out = await events.append(db, notifier, session_id, [{"type": "span.model_request_start"}])
        message: Wire = {"type": "agent.message", "content": [{"type": "text", "text": text}]}
        end: Wire = {
            "type": "span.model_request_end",
            "model_request_start_id": out[0]["id"],
            "is_error": False,
            "model_usage": MODEL_USAGE,
        }
        async with database.unit_of_work() as db:
            out += await events.append(db, notifier, session_id, [message, end])
        return out

    @staticmethod
    async def append(
        database: Database, notifier: Notifier, session_id: str, batch: Sequence[Wire]
    ) -> list[Wire]:
        async with database.unit_of_work() as db:
            return await events.append(db, notifier, session_id, batch)

    @staticmethod
    async def idle(database: Database, notifier: Notifier, session_id: str) -> list[Wire]:
        async with database.unit_of_work() as db:
            row = await sessions.load(db, session_id, for_update=True)
            return await transitions.go_idle(db, notifier, row, END_TURN)

    @staticmethod
    async def require_action(
        database: Database, notifier: Notifier, session_id: str, uses: Sequence[Wire]
    ) -> list[Wire]:
        """End the turn waiting on tool uses (custom tools, or tools whose permission is `ask`)."""
        async with database.unit_of_work() as db:
            row = await sessions.load(db, session_id, for_update=True)
            out = await events.append(db, notifier, session_id, uses)
            row.pending_action_ids = [e["id"] for e in out]
            stop: StopReason = {"type": "requires_action", "event_ids": list(row.pending_action_ids)}
            return out + await transitions.go_idle(db, notifier, row, stop)

    @classmethod
    async def turn(
        cls, database: Database, notifier: Notifier, session_id: str, replies: Sequence[str] = ("Done.",)
    ) -> list[Wire]:
        out = await cls.start(database, notifier, session_id)
        for text in replies:
            out += await cls.reply(database, notifier, session_id, text)
        return out + await cls.idle(database, notifier, session_id)

    @classmethod
    async def burst(
        cls, database: Database, notifier: Notifier, session_id: str, count: int, batch: int = 1
    ) -> list[Wire]:
        """A turn of `count` agent messages, committed `batch` at a time (texts are "0", "1", ...)."""
        out = await cls.start(database, notifier, session_id)
        for first in range(0, count, batch):
            messages: list[Wire] = [
                {"type": "agent.message", "content": [{"type": "text", "text": str(i)}]}
                for i in range(first, min(first + batch, count))
            ]
            out += await cls.append(database, notifier, session_id, messages)
        return out + await cls.idle(database, notifier, session_id)


class InProcessWorker:
    """Plays the worker inside a `ServerThread`: same process, same event loop, same notifier."""

    def __init__(self, server: ServerThread) -> None:
        self.app = server.app
        self.loop = server.server.servers[0].get_loop()

    @property
    def database(self) -> Database:
        database: Database = self.app.state.db
        return database

    @property
    def notifier(self) -> Notifier:
        notifier: Notifier = self.app.state.notifier
        return notifier

    async def call(self, work: Callable[[], Awaitable[T]], within: float = 30) -> T:
        """Run `work()` on the server's event loop and wait for it (bounded)."""

        async def run() -> T:
            return await work()

        future = asyncio.run_coroutine_threadsafe(run(), self.loop)
        return await asyncio.wait_for(asyncio.wrap_future(future), within)

    async def turn(self, session_id: str, replies: Sequence[str] = ("Done.",)) -> None:
        await self.call(lambda: steps.turn(self.database, self.notifier, session_id, replies))

    async def start(self, session_id: str) -> list[Wire]:
        return await self.call(lambda: steps.start(self.database, self.notifier, session_id))

    async def reply(self, session_id: str, text: str) -> list[Wire]:
        return await self.call(lambda: steps.reply(self.database, self.notifier, session_id, text))

    async def idle(self, session_id: str) -> list[Wire]:
        return await self.call(lambda: steps.idle(self.database, self.notifier, session_id))

    async def append(self, session_id: str, batch: Sequence[Wire]) -> list[Wire]:
        return await self.call(lambda: steps.append(self.database, self.notifier, session_id, batch))

    async def require_action(self, session_id: str, uses: Sequence[Wire]) -> list[Wire]:
        return await self.call(lambda: steps.require_action(self.database, self.notifier, session_id, uses))

    async def preview(self, session_id: str, frames: Sequence[PreviewFrame]) -> None:
        """Stream-only frames (`event_start`, `event_delta`), as the agent loop publishes them."""

        async def publish() -> None:
            for wire in frames:
                self.notifier.publish_ephemeral(session_id, wire.copy())

        await self.call(publish)

    async def burst(self, session_id: str, count: int, batch: int = 1) -> list[Wire]:
        return await self.call(
            lambda: steps.burst(self.database, self.notifier, session_id, count, batch), 120
        )

    async def wait_for_subscribers(self, session_id: str, count: int, within: float = 30) -> None:
        """Wait until `count` streams of the session are subscribed in this server (bounded)."""

        async def current() -> int:
            return self.notifier.subscriber_count(session_id)

        deadline = time.monotonic() + within
        while await self.call(current) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {await self.call(current)} of {count} streams subscribed")
            await asyncio.sleep(0.02)


async def _main(database_url: str, session_id: str, count: int, batch: int) -> None:
    """A writer in its own process: its own Database and Notifier, nothing shared with a server."""
    database = Database(database_url)
    try:
        await steps.burst(database, Notifier(), session_id, count, batch)
    finally:
        await database.dispose()


if __name__ == "__main__":  # python -m tests.support.turns DATABASE_URL SESSION_ID COUNT [BATCH]
    url, session, n, *rest = sys.argv[1:]
    asyncio.run(_main(url, session, int(n), int(rest[0]) if rest else 1))
