"""Fan-out: many subscribers, writers in other processes, and notifications that never arrive."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Iterator
from typing import Any

import anthropic
import asyncpg
import pytest

from app.db.engine import Database
from app.events.notifier import Notifier
from app.events.pg_listener import PgListener, asyncpg_dsn
from app.events.types import EventRecord
from tests.support.clients import API_KEY, strict_async_client
from tests.support.factories import make_session_async, text, user_message
from tests.support.server import ROOT, ServerProcess
from tests.support.streams import ids, read_turn, read_until
from tests.support.turns import InProcessWorker, steps

SDK = anthropic.AsyncAnthropic


async def history(sdk: SDK, session_id: str) -> list[str]:
    return [e.id async for e in sdk.beta.sessions.events.list(session_id)]


async def open_streams(sdk: SDK, session_id: str, count: int) -> list[Any]:
    return list(await asyncio.gather(*(sdk.beta.sessions.events.stream(session_id) for _ in range(count))))


async def read_all_turns(streams: list[Any]) -> list[list[str]]:
    async def read(stream: Any) -> list[str]:
        async with stream:
            return ids(await read_turn(stream, within=60))

    return list(await asyncio.gather(*(read(s) for s in streams)))


@pytest.fixture(scope="session")
def second_server(backend: str, manual_database_url: str) -> Iterator[ServerProcess]:
    """Another API replica: `python -m app serve` on the same database, no worker."""
    assert backend == "postgres", "several API processes need PostgreSQL: mark the test postgres_only"
    env = {
        "MAS_DATABASE_URL": manual_database_url,
        "MAS_API_KEYS": API_KEY,
        "MAS_AUTO_MIGRATE": "false",
        "MAS_EMBEDDED_WORKER": "false",
        "MAS_MODEL_BACKEND": "offline",
        "MAS_SANDBOX_BACKEND": "local",
        "MAS_LOG_LEVEL": "warning",
    }
    server = ServerProcess(env).start()
    try:
        yield server
    finally:
        server.stop()


async def test_a_hundred_subscribers_each_get_every_event_once_in_order(
    manual_async_client: SDK, producer: InProcessWorker
) -> None:
    sdk = manual_async_client
    session = await make_session_async(sdk)
    streams = await open_streams(sdk, session.id, 100)
    await producer.wait_for_subscribers(session.id, 100)
    await sdk.beta.sessions.events.send(session.id, events=[user_message()])  # type: ignore[list-item]
    reading = asyncio.ensure_future(read_all_turns(streams))
    await producer.burst(session.id, count=60, batch=4)
    received = await asyncio.wait_for(reading, 120)

    expected = await history(sdk, session.id)
    assert len(expected) > 60
    for got in received:
        assert got == expected


@pytest.mark.postgres_only
async def test_events_written_by_another_process_reach_the_stream(
    manual_database_url: str, manual_async_client: SDK, producer: InProcessWorker
) -> None:
    sdk = manual_async_client
    session = await make_session_async(sdk)
    streams = await open_streams(sdk, session.id, 10)
    await producer.wait_for_subscribers(session.id, 10)
    reading = asyncio.ensure_future(read_all_turns(streams))

    writer = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.support.turns", manual_database_url, session.id, "40", "3", cwd=ROOT
    )
    assert await asyncio.wait_for(writer.wait(), 60) == 0
    received = await asyncio.wait_for(reading, 60)

    expected = await history(sdk, session.id)
    messages = [e async for e in sdk.beta.sessions.events.list(session.id, types=["agent.message"])]
    assert len(messages) == 40
    for got in received:
        assert got == expected


@pytest.mark.postgres_only
async def test_api_replicas_share_live_streams(
    second_server: ServerProcess, manual_async_client: SDK, producer: InProcessWorker
) -> None:
    here = manual_async_client
    there = strict_async_client(second_server.url, API_KEY)
    session = await make_session_async(here)

    # A stream served by the other process sees what this process writes...
    async with await there.beta.sessions.events.stream(session.id) as remote:
        await there.beta.sessions.events.send(session.id, events=[user_message("hi")])  # type: ignore[list-item]
        await asyncio.sleep(0)  # let the request go out before the turn is produced
        await producer.turn(session.id, replies=["from the first process"])
        assert ids(await read_turn(remote)) == await history(here, session.id)

    # ...and a stream served here sees what the other process writes, up to the deletion.
    async with await here.beta.sessions.events.stream(session.id) as local:
        await producer.wait_for_subscribers(session.id, 1)
        await there.beta.sessions.update(session.id, title="renamed elsewhere")
        updated = await read_until(local, lambda e: e.type == "session.updated")
        assert getattr(updated[-1], "title", None) == "renamed elsewhere"
        await there.beta.sessions.delete(session.id)
        rest = await read_until(local, lambda e: False)
    assert [e.type for e in rest] == ["session.deleted"]
    await there.close()


async def _drop_other_connections(database_url: str) -> None:
    """Kill this database's idle connections, LISTEN ones included: their NOTIFYs are lost."""
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'idle'"
        )
    finally:
        await conn.close()


async def test_a_missed_notification_is_recovered_from_the_log(
    backend: str, manual_database_url: str, manual_async_client: SDK, producer: InProcessWorker
) -> None:
    """Events committed without the server being told (another writer whose notification was
    lost) still reach the stream, in log order, through its re-reads of the log."""
    sdk = manual_async_client
    session = await make_session_async(sdk)
    lone = Database(manual_database_url)  # its own engine and notifier: the server hears nothing from it
    try:
        async with await sdk.beta.sessions.events.stream(session.id) as stream:
            await producer.wait_for_subscribers(session.id, 1)
            await sdk.beta.sessions.events.send(session.id, events=[user_message()])  # type: ignore[list-item]
            await producer.start(session.id)
            if backend == "postgres":
                await _drop_other_connections(manual_database_url)
            message: EventRecord = {"type": "agent.message", "content": [text("unannounced")]}
            missed = await steps.append(lone, Notifier(), session.id, [message])
            # Only a re-read of the log can deliver it (nothing else is written meanwhile).
            await read_until(stream, lambda e: getattr(e, "id", None) == missed[0]["id"])
            # A gap: the told event arrives first, the untold one before it comes from the log.
            untold = await steps.append(lone, Notifier(), session.id, [message])
            told = await producer.append(session.id, [message])
            await producer.idle(session.id)
            rest = await read_turn(stream)
            assert ids(rest)[:2] == [untold[0]["id"], told[0]["id"]]
        listed = await history(sdk, session.id)
        assert listed[-len(rest) :] == ids(rest)
    finally:
        await lone.dispose()


@pytest.mark.postgres_only
async def test_an_interrupt_sent_to_another_replica_is_announced_here(
    second_server: ServerProcess, manual_database_url: str, manual_async_client: SDK
) -> None:
    """A worker in this process running the session hears of an interrupt queued through another
    API process at once (NOTIFY), not only from its safety-net read of the log."""
    session = await make_session_async(manual_async_client)
    notifier = Notifier()

    async def no_events(_session_id: str, _after: int) -> list[Any]:
        return []

    listener = PgListener(manual_database_url, notifier, no_events)
    await listener.start()
    there = strict_async_client(second_server.url, API_KEY)
    try:
        with notifier.interrupts(session.id) as announced:
            await there.beta.sessions.events.send(session.id, events=[{"type": "user.interrupt"}])
            await asyncio.wait_for(announced.wait(), 60)
    finally:
        await there.close()
        await listener.close()
