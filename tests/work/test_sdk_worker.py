"""The unmodified SDK 2.14 `EnvironmentWorker` serves self-hosted sessions through the queue:
poll → ack → heartbeat → tools → stop, and a worker killed mid-tool is replaced through lease
expiry without the server accepting a tool result twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import IO, Any

import anthropic
import pytest

from tests.skills.factories import skill_files
from tests.support.factories import MODEL
from tests.support.loop import (
    TOOLSET,
    custom_tool,
    log,
    loop_server,
    message,
    of_type,
    result_text,
    sdk,
    send,
    stop_reason,
    texts,
)
from tests.support.server import ROOT, ServerThread
from tests.work.conftest import SelfHosted, self_hosted
from tests.work.sdk_worker import worker

SDK = anthropic.AsyncAnthropic
WAIT = 120.0  # generous: the SDK worker sleeps 1-3 s between empty polls, and leases must run out


@pytest.fixture(scope="module")
def queue_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """The embedded worker and the offline model; short leases so a dead worker is noticed soon."""
    yield from loop_server(backend, tmp_path_factory.mktemp(f"queue-{backend}"), work_lease_ttl_seconds=4)


@pytest.fixture
async def admin(queue_server: ServerThread) -> AsyncIterator[SDK]:
    async with sdk(queue_server.url) as client:
        yield client


@pytest.fixture
async def env(queue_server: ServerThread, admin: SDK) -> AsyncIterator[SelfHosted]:
    setup = await self_hosted(queue_server.url, admin, TOOLSET, custom_tool())
    try:
        yield setup
    finally:
        await setup.worker.close()


async def wait_until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def ended_turn(client: SDK, session_id: str) -> list[Any]:
    async def check() -> list[Any] | None:
        events = await log(client, session_id)
        idle = of_type(events, "session.status_idle")
        return events if idle and stop_reason(idle[-1]) == {"type": "end_turn"} else None

    result: list[Any] = await wait_until(check, f"{session_id} to end its turn")
    return result


@contextlib.asynccontextmanager
async def running(task_factory: Callable[[], Any]) -> AsyncIterator[None]:
    task = asyncio.create_task(task_factory())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_the_sdk_worker_completes_a_bash_and_custom_tool_session(
    env: SelfHosted, admin: SDK, tmp_path: Path
) -> None:
    session_id = await env.session(admin)
    async with running(worker(admin, env.environment_id, env.key, tmp_path).run):
        await send(
            admin,
            session_id,
            message('/tool bash {"command": "echo from-the-worker"}\n/tool lookup {"key": "colour"}'),
        )
        events = await ended_turn(admin, session_id)
        assert texts(events)[-1] == "Tool results:\nfrom-the-worker\nteal-colour"
        assert len(of_type(events, "user.tool_result")) == 1
        assert len(of_type(events, "user.custom_tool_result")) == 1
        assert not of_type(events, "agent.tool_result")  # nothing ran on the server

        async def stopped() -> bool:
            items = [w async for w in env.worker.beta.environments.work.list(env.environment_id)]
            return len(items) == 1 and items[0].state == "stopped"

        # After `max_idle` with the turn ended the worker stops the item itself.
        await wait_until(stopped, "the worker to stop its work item")
        (item,) = [w async for w in env.worker.beta.environments.work.list(env.environment_id)]
        assert item.acknowledged_at is not None and item.started_at is not None


def start_worker_process(
    url: str, env: SelfHosted, workdir: Path, errors: IO[bytes]
) -> subprocess.Popen[bytes]:
    workdir.mkdir()
    return subprocess.Popen(
        [sys.executable, "-m", "tests.work.sdk_worker", url, env.environment_id, env.key, str(workdir)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=errors,
    )


async def test_a_worker_killed_mid_tool_is_replaced_after_its_lease_runs_out(
    env: SelfHosted, admin: SDK, queue_server: ServerThread, tmp_path: Path
) -> None:
    session_id = await env.session(admin)
    marker = tmp_path / "started"
    errors = (tmp_path / "first-worker.log").open("wb")  # kept for a failing run's post-mortem
    doomed = start_worker_process(queue_server.url, env, tmp_path / "first", errors)
    try:
        command = f"echo run >> {marker}; sleep 2; echo survived"
        await send(admin, session_id, message('/tool bash {"command": "' + command + '"}'))

        async def tool_started() -> bool:
            return marker.exists()

        await wait_until(tool_started, "the first worker to start the tool")
    finally:
        os.killpg(doomed.pid, signal.SIGKILL)
        await asyncio.to_thread(doomed.wait, 30)
        errors.close()

    (tmp_path / "second").mkdir()
    async with running(worker(admin, env.environment_id, env.key, tmp_path / "second").run):
        events = await ended_turn(admin, session_id)
    (use,) = of_type(events, "agent.tool_use")
    results = of_type(events, "user.tool_result")
    assert [r.tool_use_id for r in results] == [use.id]  # answered once, by the second worker
    assert texts(events)[-1] == "Tool results:\nsurvived"
    assert marker.read_text().splitlines() == ["run", "run"]  # the killed run, then the replacement's
    items = [w async for w in env.worker.beta.environments.work.list(env.environment_id)]
    assert len(items) == 1  # the same work item went back to the queue


async def test_the_sdk_worker_syncs_memory_stores_and_downloads_skills(
    env: SelfHosted, admin: SDK, tmp_path: Path
) -> None:
    """The worker mounts the session's stores at their `mount_path` with the sessions token: the
    agent reads a memory that exists, writes a new one (attributed to the session), cannot write a
    read_only store; the agent's skill is downloaded into the workdir through the same token."""
    suffix = uuid.uuid4().hex[:8]
    notes = await admin.beta.memory_stores.create(name=f"notes {suffix}")
    rules = await admin.beta.memory_stores.create(name=f"rules {suffix}")
    await admin.beta.memory_stores.memories.create(notes.id, path="/facts.md", content="the sky is teal")
    await admin.beta.memory_stores.memories.create(rules.id, path="/rule.md", content="be brief")
    skill = await admin.beta.skills.create(files=skill_files(f"greeting-{suffix}"))
    agent = await admin.beta.agents.create(
        name="remembers",
        model=MODEL,
        tools=[TOOLSET],  # type: ignore[list-item]
        skills=[{"type": "custom", "skill_id": skill.id}],
    )
    session = await admin.beta.sessions.create(
        agent=agent.id,
        environment_id=env.environment_id,
        resources=[
            {"type": "memory_store", "memory_store_id": notes.id},
            {"type": "memory_store", "memory_store_id": rules.id, "access": "read_only"},
        ],
    )
    mounts = {r.memory_store_id: r.mount_path for r in session.resources if r.type == "memory_store"}
    notes_dir, rules_dir = mounts[notes.id], mounts[rules.id]
    assert notes_dir and rules_dir
    write = '/tool write {{"file_path": "{}", "content": "{}"}}'
    prompt = "\n".join(
        [
            '/tool bash {"command": "cat ' + f'{notes_dir}/facts.md {rules_dir}/rule.md '
            f'skills/greeting-{suffix}/SKILL.md | head -4"' + "}",
            write.format(f"{notes_dir}/learned.md", "the grass is violet"),
            write.format(f"{rules_dir}/rule.md", "be verbose"),
        ]
    )
    async with running(worker(admin, env.environment_id, env.key, tmp_path).run):
        await send(admin, session.id, message(prompt))
        events = await ended_turn(admin, session.id)

        async def stopped() -> bool:
            items = [w async for w in env.worker.beta.environments.work.list(env.environment_id)]
            return len(items) == 1 and items[0].state == "stopped"

        # The final sync runs when the worker ends the item (after `max_idle`).
        await wait_until(stopped, "the worker to sync and stop its work item")

    results = [result_text(e) for e in of_type(events, "user.tool_result")]
    assert "the sky is teal" in results[0] and "be brief" in results[0]
    assert "---" in results[0] and f"name: greeting-{suffix}" in results[0]  # the skill's SKILL.md
    assert "wrote" in results[1]
    assert "read-only" in results[2] and of_type(events, "user.tool_result")[2].is_error
    learned = [m async for m in admin.beta.memory_stores.memories.list(notes.id, view="full")]
    assert {(m.path, m.content) for m in learned if m.type == "memory"} == {
        ("/facts.md", "the sky is teal"),
        ("/learned.md", "the grass is violet"),
    }
    (version,) = [
        v
        async for v in admin.beta.memory_stores.memory_versions.list(notes.id)
        if v.path == "/learned.md"
    ]
    assert version.operation == "created"
    assert version.created_by is not None and version.created_by.type == "session_actor"
    assert version.created_by.session_id == session.id
    rules_now = [m async for m in admin.beta.memory_stores.memories.list(rules.id, view="full")]
    assert [m.content for m in rules_now if m.type == "memory"] == ["be brief"]  # read_only: unchanged
    left = await asyncio.to_thread(lambda: [p for p in (notes_dir, rules_dir) if Path(p).exists()])
    assert left == []  # the worker removed the folders it made


class CuttableProxy:
    """A TCP relay to the server whose connections the test can cut, as a network drop would."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.streams: list[asyncio.StreamWriter] = []  # client sides of event-stream connections
        self.open: set[asyncio.StreamWriter] = set()
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.open |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, watch: bool) -> None:
            with contextlib.suppress(OSError):
                while data := await source.read(65536):
                    if watch and b"/events/stream" in data.split(b"\r\n", 1)[0]:
                        self.streams.append(writer)
                    sink.write(data)
                    await sink.drain()
            sink.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))
        self.open -= {writer, up_writer}

    def cut(self) -> None:
        for writer in list(self.open):
            writer.transport.abort()

    async def close(self) -> None:
        self.cut()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_the_sdk_worker_reconnects_after_its_connections_drop(
    env: SelfHosted, queue_server: ServerThread, tmp_path: Path
) -> None:
    """Every connection of the worker is cut while it waits on the event stream: it reconnects,
    sees the tool call that came meanwhile and answers it, holding the same work item."""
    proxy = CuttableProxy(queue_server.port)
    url = await proxy.start()
    try:
        async with sdk(url) as through_proxy, sdk(queue_server.url) as admin:
            session_id = await env.session(admin)
            async with running(worker(through_proxy, env.environment_id, env.key, tmp_path).run):

                async def streaming() -> bool:
                    return bool(proxy.streams)

                await wait_until(streaming, "the worker to open the session's event stream")
                proxy.cut()
                await send(admin, session_id, message('/tool bash {"command": "echo after-the-drop"}'))
                events = await ended_turn(admin, session_id)
            assert texts(events)[-1] == "Tool results:\nafter-the-drop"
            assert len(of_type(events, "user.tool_result")) == 1
            assert len(proxy.streams) > 1  # the stream was opened again
            items = [w async for w in env.worker.beta.environments.work.list(env.environment_id)]
            assert len(items) == 1 and items[0].state == "stopped"  # served and stopped by the worker
    finally:
        await proxy.close()
