"""A dream whose worker died does not stay `running` forever.

A `mas serve` process is SIGKILLed while its dream runner waits on the model; a fresh process takes
the dream over once the lease expires and completes it into the output store the first attempt
made. Against the database directly: a dream lost by its worker twice fails with a clear error,
a runner that lost its lease can write nothing more, and a graceful stop gives the dream back.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic.types.beta import BetaDream

from app.db.engine import Database
from app.dreams import leases, service
from app.dreams.schemas import DreamCreate, DreamUsage
from tests.support.loop import TIMEOUT, fresh_database, new_session, process_environment, sdk, turn
from tests.support.server import ServerProcess, stop_tool_servers

MODEL = "claude-sonnet-4-6"
LEASE_SECONDS = 2


pytestmark = pytest.mark.slow  # run first in parallel runs (tests/conftest.py)


@pytest.fixture(scope="module")
def shared_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    directory = tmp_path_factory.mktemp(f"dream-recovery-{backend}")
    for url in fresh_database(backend, directory):
        try:
            yield url, directory
        finally:
            stop_tool_servers(directory / "sandbox")


def _environment(url: str, directory: Path) -> dict[str, str]:
    return {
        **process_environment(url, directory, lease_seconds=LEASE_SECONDS),
        "MAS_DREAMS_POLL_SECONDS": "0.2",
    }


@pytest.fixture
async def database(shared_database: tuple[str, Path]) -> AsyncIterator[Database]:
    db = Database(shared_database[0])
    try:
        yield db
    finally:
        await db.dispose()


def _inputs(store_id: str, session_id: str) -> list[Any]:
    return [
        {"type": "memory_store", "memory_store_id": store_id},
        {"type": "sessions", "session_ids": [session_id]},
    ]


async def _wait(client: anthropic.AsyncAnthropic, dream_id: str, done: Any) -> BetaDream:
    deadline = time.monotonic() + TIMEOUT
    while not done(dream := await client.beta.dreams.retrieve(dream_id)):
        assert time.monotonic() < deadline, f"dream {dream_id} still {dream.status}"
        await asyncio.sleep(0.1)
    return dream


async def _sources(client: anthropic.AsyncAnthropic) -> tuple[str, str]:
    store = await client.beta.memory_stores.create(name=f"team-{uuid.uuid4().hex[:6]}")
    await client.beta.memory_stores.memories.create(store.id, path="/keep.md", content="the build is green")
    session_id = await new_session(client)
    await turn(client, session_id, "I drink coffee now.")
    return store.id, session_id


async def test_a_dream_of_a_killed_worker_is_completed_by_the_next(
    shared_database: tuple[str, Path],
) -> None:
    env = _environment(*shared_database)
    processes: list[ServerProcess] = []
    write = json.dumps({"path": "/prefs/drinks.md", "content": "coffee"})
    try:
        first = await asyncio.to_thread(ServerProcess(env).start)
        processes.append(first)
        async with sdk(first.url) as client:
            store_id, session_id = await _sources(client)
            created = await client.beta.dreams.create(
                inputs=_inputs(store_id, session_id),
                model=MODEL,
                instructions=f"/sleep 8000\n/tool write_memory {write}",
            )
            # Claimed, the output store made, the model request under way: then the worker dies.
            begun = await _wait(client, created.id, lambda d: d.status == "running" and d.outputs)
        await asyncio.to_thread(first.kill)

        second = await asyncio.to_thread(ServerProcess(env).start)
        processes.append(second)
        async with sdk(second.url) as client:
            left = await client.beta.dreams.retrieve(created.id)
            dream = await _wait(client, created.id, lambda d: d.status != "running")
            (output,) = dream.outputs
            page = await client.beta.memory_stores.memories.list(output.memory_store_id, view="full")
            stores = [s async for s in client.beta.memory_stores.list(limit=100)]
    finally:
        for process in reversed(processes):
            await asyncio.to_thread(process.stop)

    assert left.status == "running"  # the killed worker had not finished it
    assert (dream.status, dream.error) == ("completed", None)
    assert [o.memory_store_id for o in begun.outputs] == [output.memory_store_id]  # reused, not made again
    assert [s.id for s in stores if created.id in (s.description or "")] == [output.memory_store_id]
    contents = {m.path: m.content for m in page.data if m.type == "memory"}
    assert contents == {"/keep.md": "the build is green", "/prefs/drinks.md": "coffee"}


async def _enqueue(database: Database, client: anthropic.AsyncAnthropic) -> str:
    store_id, session_id = await _sources(client)
    body = DreamCreate.model_validate({"inputs": _inputs(store_id, session_id), "model": MODEL})
    async with database.unit_of_work() as db:
        return (await service.enqueue(db, await service.plan(db, body))).id


async def _claim(database: Database, owner: str, lease_seconds: float) -> leases.DreamJob | None:
    async with database.unit_of_work() as db:
        return await leases.claim(db, owner, lease_seconds)


@pytest.fixture
async def api(shared_database: tuple[str, Path]) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """An API process running no dreams: the test is the only runner."""
    env = {**_environment(*shared_database), "MAS_DREAMS_POLL_SECONDS": "0"}
    process = await asyncio.to_thread(ServerProcess(env).start)
    try:
        async with sdk(process.url) as client:
            yield client
    finally:
        await asyncio.to_thread(process.stop)


async def _drain(database: Database) -> None:
    """Fail what earlier tests left claimable, so the next claim is this test's dream."""
    while (job := await _claim(database, "drain", 0)) is not None:
        async with database.unit_of_work() as db:
            await service.finish(db, job.id, ("internal_error", "drained by a test"))


async def test_a_dream_lost_twice_fails_with_a_clear_error(
    api: anthropic.AsyncAnthropic, database: Database
) -> None:
    await _drain(database)
    dream_id = await _enqueue(database, api)

    first = await _claim(database, "worker-1", 0)  # a lease that is over at once: worker 1 died
    second = await _claim(database, "worker-2", 0)
    third = await _claim(database, "worker-3", 30)
    dream = await api.beta.dreams.retrieve(dream_id)

    assert first is not None and second is not None and (first.id, second.id) == (dream_id, dream_id)
    assert (first.attempt, second.attempt, third) == (1, 2, None)
    assert dream.status == "failed" and dream.error is not None and dream.ended_at is not None
    assert dream.error.type == "internal_error"
    assert "stopped answering 2 times" in dream.error.message
    assert "create the dream again" in dream.error.message


async def test_a_runner_that_lost_its_lease_writes_nothing(
    api: anthropic.AsyncAnthropic, database: Database
) -> None:
    await _drain(database)
    dream_id = await _enqueue(database, api)
    stale = await _claim(database, "worker-1", 0)
    current = await _claim(database, "worker-2", 30)
    assert stale is not None and current is not None and current.token > stale.token

    async with database.unit_of_work() as db:
        assert not await leases.renew(db, stale, 30)
        assert await leases.renew(db, current, 30)
    with pytest.raises(leases.DreamLeaseLost):
        async with database.unit_of_work() as db:
            await leases.fence(db, stale)
            await service.add_usage(db, dream_id, DreamUsage(output_tokens=99))
    async with database.unit_of_work() as db:
        await leases.fence(db, current)
        await service.finish(db, dream_id)

    dream = await api.beta.dreams.retrieve(dream_id)
    assert (dream.status, dream.usage.output_tokens) == ("completed", 0)


async def test_a_graceful_stop_gives_the_dream_back_uncounted(
    api: anthropic.AsyncAnthropic, database: Database
) -> None:
    await _drain(database)
    dream_id = await _enqueue(database, api)
    first = await _claim(database, "worker-1", 30)
    assert first is not None and await _claim(database, "worker-2", 30) is None  # leased: not taken

    async with database.unit_of_work() as db:
        await leases.release(db, first)
    again = await _claim(database, "worker-2", 30)

    assert again is not None and (again.id, again.attempt) == (dream_id, 1)
    assert (await api.beta.dreams.retrieve(dream_id)).status == "running"
