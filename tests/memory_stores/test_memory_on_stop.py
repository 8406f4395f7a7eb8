"""Memory written outside a tool call is not lost: a background job the agent started writes under
/mnt/memory/<slug>/ after its tool call (and the sync at the end of it) is over; the sandbox is
then stopped for idleness, the session deleted, or its dead container pruned by `mas sandbox
prune`, and the write becomes a memory version all the same (real Docker sandboxes, strict SDK)."""

from __future__ import annotations

import asyncio
import functools
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import anthropic
import docker
import docker.errors
import pytest

from app.maintenance import prune
from app.sandbox.containers import Naming
from tests.files.conftest import bash
from tests.support.docker_engine import docker_loop_server
from tests.support.factories import MODEL
from tests.support.loop import TIMEOUT, TOOLSET, sdk
from tests.support.server import ServerThread

pytestmark = pytest.mark.docker

IDLE_STOP_SECONDS = 8.0


@pytest.fixture(scope="module")
def idle_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """Sandboxes stop after a short idle time (no warm pool: every sandbox is the session's own)."""
    directory = tmp_path_factory.mktemp(f"memory-stop-{backend}")
    yield from docker_loop_server(backend, directory, sandbox_idle_stop_seconds=IDLE_STOP_SECONDS)


@pytest.fixture
async def client(idle_server: ServerThread) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with sdk(idle_server.url) as client:
        yield client


async def _mounted_session(client: anthropic.AsyncAnthropic) -> tuple[str, str, str]:
    """A session with a read_write store mounted: (session id, store id, mount path)."""
    suffix = uuid.uuid4().hex[:6]
    store = await client.beta.memory_stores.create(name=f"Late Notes {suffix}")
    agent = await client.beta.agents.create(name="remembers", model=MODEL, tools=[TOOLSET])  # type: ignore[list-item]
    environment = await client.beta.environments.create(name=f"memory-stop-{suffix}")
    session = await client.beta.sessions.create(
        agent=agent.id,
        environment_id=environment.id,
        resources=[{"type": "memory_store", "memory_store_id": store.id}],
    )
    return session.id, store.id, f"/mnt/memory/late-notes-{suffix}"


async def _write_after_the_call(
    client: anthropic.AsyncAnthropic, server: ServerThread, session_id: str, mount: str
) -> None:
    """A background job writes the memory once its bash call is over; returns once it has (seen
    on the host side of the mount), the session idle meanwhile."""
    job = f"(sleep 2; echo 'remembered late' > {mount}/late.md) > /dev/null 2>&1 &"
    out, failed = await bash(client, session_id, f"{job} echo started")
    assert (out, failed) == ("started", False)
    written = Naming(server.settings).memory_dir(session_id) / mount.rsplit("/", 1)[-1] / "late.md"
    await _until(functools.partial(_holds, written), f"{written} was never written")


def _holds(path: Path) -> bool:
    return path.exists() and path.read_text() == "remembered late\n"


async def _until(check: Callable[[], bool], message: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, message
        await asyncio.sleep(0.2)


async def _late_memory(client: anthropic.AsyncAnthropic, store_id: str) -> str | None:
    deadline = time.monotonic() + TIMEOUT
    while True:
        page = await client.beta.memory_stores.memories.list(store_id, view="full")
        found = [m.content for m in page.data if m.type == "memory" and m.path == "/late.md"]
        if found or time.monotonic() > deadline:
            return found[0] if found else None
        await asyncio.sleep(0.3)


async def test_a_write_after_the_tool_call_is_saved_when_the_sandbox_stops_idle(
    client: anthropic.AsyncAnthropic, idle_server: ServerThread
) -> None:
    session_id, store_id, mount = await _mounted_session(client)
    await _write_after_the_call(client, idle_server, session_id, mount)

    content = await _late_memory(client, store_id)  # no tool call comes: only the idle stop syncs

    assert content == "remembered late\n"
    versions = await client.beta.memory_stores.memory_versions.list(store_id, session_id=session_id)
    assert [(v.path, v.operation) for v in versions.data] == [("/late.md", "created")]


async def test_a_write_after_the_tool_call_is_saved_when_the_session_is_deleted(
    client: anthropic.AsyncAnthropic, idle_server: ServerThread
) -> None:
    session_id, store_id, mount = await _mounted_session(client)
    await _write_after_the_call(client, idle_server, session_id, mount)

    await client.beta.sessions.delete(session_id)
    content = await _late_memory(client, store_id)

    assert content == "remembered late\n"
    versions = await client.beta.memory_stores.memory_versions.list(store_id)
    assert [(v.path, v.operation) for v in versions.data] == [("/late.md", "created")]
    created_by = versions.data[0].created_by
    assert created_by is not None and created_by.type == "session_actor"
    assert created_by.session_id == session_id


async def test_a_write_left_in_a_dead_container_is_saved_when_prune_removes_it(
    client: anthropic.AsyncAnthropic, idle_server: ServerThread
) -> None:
    session_id, store_id, mount = await _mounted_session(client)
    await _write_after_the_call(client, idle_server, session_id, mount)
    engine = docker.from_env()
    try:  # the container dies (no worker stops it: no sync), then its session is archived
        label = f"mas.session={session_id}"
        for container in engine.containers.list(filters={"label": label}, ignore_removed=True):
            container.kill()
            # The kill returns once the signal is sent; prune rightly leaves a container alone
            # until the engine reports it stopped.
            container.wait(timeout=60)
    finally:
        engine.close()
    await client.beta.sessions.archive(session_id)

    result = await asyncio.to_thread(prune, idle_server.settings, dry_run=False)

    assert session_id in [item.name for item in result.removed]
    content = await _late_memory(client, store_id)
    assert content == "remembered late\n"
