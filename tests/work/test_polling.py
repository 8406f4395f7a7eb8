"""The long poll sleeps until work is queued: a waiting poll reads the queue when it starts, when
an item is queued (announced by the commit that queued it, in this process or another) and once
more at its deadline, never in a loop; and it answers as soon as the item is queued."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import anthropic
import pytest

from app.db.engine import Database
from app.events.notifier import Notifier
from app.events.pg_listener import PgListener
from app.work import polling
from app.work import service as work
from app.work.schemas import Work
from tests.support.statements import recorded_statements
from tests.work.conftest import SelfHosted

NEVER_RECLAIM = 86_400_000  # the claimed item stays claimed: only the new one is claimable
LONG = 600_000  # longer than any test: the poll ends because it was woken, not at its deadline


def queue_reads(database: Database, environment_id: str) -> AbstractContextManager[list[str]]:
    """The statements about ``environment_id``'s queue that the database runs while the block does."""
    return recorded_statements(
        database,
        lambda statement, parameters: "work_items" in statement and environment_id in str(parameters),
    )


@pytest.fixture
def notifier(database: Database) -> Iterator[Notifier]:
    """A notifier that the database's commits announce to, as `mas serve` wires them."""
    notifier, before = Notifier(), database.on_wake
    database.on_wake = notifier.wake
    try:
        yield notifier
    finally:
        database.on_wake = before


async def poll(database: Database, notifier: Notifier, environment_id: str, block_ms: int) -> Work | None:
    return await polling.long_poll(
        database,
        notifier,
        environment_id,
        worker_id=None,
        block_ms=block_ms,
        reclaim_older_than_ms=NEVER_RECLAIM,
    )


async def take_the_queued_item(database: Database, notifier: Notifier, env: SelfHosted) -> Work:
    item = await poll(database, notifier, env.environment_id, 999)
    assert item is not None
    return item


async def queue_again(database: Database, environment_id: str, session_id: str) -> None:
    async with database.unit_of_work() as db:
        await work.enqueue(db, environment_id, session_id)


async def test_a_poll_on_an_empty_queue_reads_it_at_its_start_and_its_deadline_only(
    database: Database, notifier: Notifier
) -> None:
    with queue_reads(database, "env_nothing_queued") as reads:
        assert await poll(database, notifier, "env_nothing_queued", 999) is None
    # Two checks (its queued items, its expired leases: two statements each); a check every 50 ms
    # would have made about twenty.
    assert len(reads) == 4


async def test_a_waiting_poll_gets_an_item_queued_meanwhile_at_once(
    database: Database, notifier: Notifier, env: SelfHosted, async_client: anthropic.AsyncAnthropic
) -> None:
    session_id = await env.session(async_client)
    first = await take_the_queued_item(database, notifier, env)
    waiting = asyncio.create_task(poll(database, notifier, env.environment_id, LONG))
    await queue_again(database, env.environment_id, session_id)
    item = await asyncio.wait_for(waiting, 60)  # woken by the commit: its deadline is minutes away
    assert item is not None and item.id != first.id and item.data.id == session_id


@pytest.mark.postgres_only
async def test_work_queued_by_another_process_wakes_a_waiting_poll(
    database_url: str, database: Database, env: SelfHosted, async_client: anthropic.AsyncAnthropic
) -> None:
    """The announcement travels by NOTIFY: a poll in one process, the commit in another."""
    session_id = await env.session(async_client)
    here, there = Notifier(), Notifier()
    first = await take_the_queued_item(database, here, env)
    other = Database(database_url)
    other.on_wake = there.wake

    async def no_events(_session_id: str, _after: int) -> list[Any]:
        return []

    listeners = [PgListener(database_url, notifier, no_events) for notifier in (here, there)]
    for listener in listeners:
        await listener.start()
    try:
        waiting = asyncio.create_task(poll(database, here, env.environment_id, LONG))
        await queue_again(other, env.environment_id, session_id)
        item = await asyncio.wait_for(waiting, 60)
        assert item is not None and item.id != first.id
    finally:
        for listener in listeners:
            await listener.close()
        await other.dispose()
