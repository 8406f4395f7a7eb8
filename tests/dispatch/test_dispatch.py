"""`mas dispatch` on a real Docker engine: each claimed self-hosted session runs the SDK's own
`EnvironmentWorker` in a hardened container of its own; stops and killed containers are handled.

Nothing is pre-created for the dispatcher: it builds its image (the SDK layer on the base image),
creates its network on first use and its containers per work item, and is driven only through
the public API (the SDK in strict mode) and the queue."""

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
import docker
import docker.errors
import pytest

from app.config import Settings
from app.dispatch.queue import QueueClient
from app.dispatch.service import FAILURE_KEY, Dispatcher, DispatchOptions
from app.sandbox.containers import Naming
from app.sandbox.docker_launcher import DockerLauncher, dispatch_settings
from app.sandbox.launcher import SandboxPolicy
from tests.sandbox.conftest import sandbox_settings
from tests.support.loop import (
    TOOLSET,
    custom_tool,
    log,
    loop_server,
    message,
    of_type,
    sdk,
    send,
    stop_reason,
    texts,
)
from tests.support.server import ROOT, ServerThread
from tests.work.conftest import SelfHosted, self_hosted

# Slow on a loaded machine: containers start, leases run out; no timing is asserted.
pytestmark = [pytest.mark.docker, pytest.mark.timeout(900), pytest.mark.slow]

SDK = anthropic.AsyncAnthropic
WAIT = 240.0  # generous: containers start slowly on a loaded machine, and leases must run out
LEASE_SECONDS = 60  # covers a sandbox's start (to the first heartbeat) at a load of 30
MAX_IDLE = 2.0  # the worker's wait for new input after a turn ends


@pytest.fixture(scope="module")
def queue_server(
    docker_client: docker.DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    yield from loop_server(
        "sqlite", tmp_path_factory.mktemp("dispatch"), work_lease_ttl_seconds=LEASE_SECONDS
    )


@pytest.fixture(scope="module")
def launcher_settings(state_dir: Path) -> Settings:
    return sandbox_settings(state_dir / "dispatch")


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


class Running:
    def __init__(self, dispatcher: Dispatcher, launcher: DockerLauncher, lines: list[str]) -> None:
        self.dispatcher = dispatcher
        self.launcher = launcher
        self.lines = lines

    def containers(self, docker_client: docker.DockerClient) -> list[Any]:
        filters = self.launcher.naming.filters("dispatch")
        return list(docker_client.containers.list(all=True, filters=filters, ignore_removed=True))


@contextlib.asynccontextmanager
async def dispatching(
    env: SelfHosted,
    queue_server: ServerThread,
    launcher_settings: Settings,
    docker_client: docker.DockerClient,
) -> AsyncIterator[Running]:
    """A dispatcher serving ``env`` until the block ends; then no container of it may be left."""
    launcher = DockerLauncher(launcher_settings, env.environment_id)
    queue = QueueClient(queue_server.url, env.environment_id, env.key, "test-dispatcher")
    lines: list[str] = []
    await launcher.prepare(SandboxPolicy(max_idle_seconds=MAX_IDLE))
    options = DispatchOptions(api_url=queue_server.url, drain_seconds=5.0, stop_grace_seconds=5.0)

    def echo(line: str) -> None:
        lines.append(line)
        print(f"{time.strftime('%H:%M:%S')} {line}")  # shown with a failing test's output

    dispatcher = Dispatcher(queue, launcher, options, echo)
    stop = asyncio.Event()
    task = asyncio.create_task(dispatcher.run(stop))
    try:
        yield Running(dispatcher, launcher, lines)
    finally:
        stop.set()
        await asyncio.wait_for(task, 120)
        running = Running(dispatcher, launcher, lines)
        # A removal the dispatcher started may still be under way in the engine (its call can time
        # out under load while the engine goes on): wait for it before calling anything left over.
        deadline = time.monotonic() + WAIT
        left = running.containers(docker_client)
        while left and time.monotonic() < deadline:
            await asyncio.sleep(1)
            left = running.containers(docker_client)
        await queue.close()
        await launcher.close()
        for container in left:  # a failing test's leftovers; the assertion below reports them
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        assert left == [], "\n".join(lines)


@pytest.fixture
async def dispatcher(
    env: SelfHosted,
    queue_server: ServerThread,
    launcher_settings: Settings,
    docker_client: docker.DockerClient,
) -> AsyncIterator[Running]:
    async with dispatching(env, queue_server, launcher_settings, docker_client) as running:
        yield running


async def wait_until(check: Callable[[], Any], what: str, lines: list[str]) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}; the dispatcher said:\n" + "\n".join(lines))


async def ended_turn(client: SDK, session_id: str, lines: list[str]) -> list[Any]:
    async def check() -> list[Any] | None:
        events = await log(client, session_id)
        idle = of_type(events, "session.status_idle")
        return events if idle and stop_reason(idle[-1]) == {"type": "end_turn"} else None

    result: list[Any] = await wait_until(check, f"{session_id} to end its turn", lines)
    return result


async def work_items(env: SelfHosted) -> list[Any]:
    return [w async for w in env.worker.beta.environments.work.list(env.environment_id)]


async def test_a_dispatched_sandbox_runs_a_session_end_to_end(
    env: SelfHosted, admin: SDK, dispatcher: Running, docker_client: docker.DockerClient
) -> None:
    store = await admin.beta.memory_stores.create(name=f"notes {uuid.uuid4().hex[:8]}")
    await admin.beta.memory_stores.memories.create(store.id, path="/facts.md", content="the sky is teal")
    session = await admin.beta.sessions.create(
        agent=env.agent_id,
        environment_id=env.environment_id,
        resources=[{"type": "memory_store", "memory_store_id": store.id}],
    )
    session_id = session.id
    (mounted,) = [r.mount_path for r in session.resources if r.type == "memory_store"]
    # The worker in the sandbox mounts the store: the agent reads a memory and writes one with bash.
    command = f"echo from-$(hostname) as $(id -u): $(cat {mounted}/facts.md); echo violet > {mounted}/new.md"
    await send(
        admin,
        session_id,
        message('/tool bash {"command": "' + command + '"}\n/tool lookup {"key": "colour"}'),
    )

    async def custom_call() -> Any:
        calls = of_type(await log(admin, session_id), "agent.custom_tool_use")
        return calls[0] if calls else None

    call = await wait_until(custom_call, "the custom tool call", dispatcher.lines)

    async def started() -> Any:
        return dispatcher.containers(docker_client)

    (container,) = await wait_until(started, "the sandbox", dispatcher.lines)
    host = container.attrs["HostConfig"]
    assert host["Memory"] > 0 and host["PidsLimit"] > 0 and host["NanoCpus"] > 0
    assert host["CapDrop"] == ["ALL"] and "no-new-privileges:true" in host["SecurityOpt"]
    assert host["ReadonlyRootfs"] is True  # the disk quota holds every writable place
    environment = "\n".join(container.attrs["Config"]["Env"])
    assert env.key not in environment  # the sandbox holds the item's secret, never the environment key
    await send(
        admin,
        session_id,
        {
            "type": "user.custom_tool_result",
            "custom_tool_use_id": call.id,
            "content": [{"type": "text", "text": "teal"}],
        },
    )  # the sandbox runs the toolset; the custom tool is the client's to answer
    events = await ended_turn(admin, session_id, dispatcher.lines)
    # Results in the order they came: the client's answer may come first.
    assert sorted(texts(events)[-1].splitlines()) == [
        "Tool results:",
        "from-sandbox as 0: the sky is teal",
        "teal",
    ]
    assert len(of_type(events, "user.tool_result")) == 1
    assert not of_type(events, "agent.tool_result")  # nothing ran on the server

    async def finished() -> bool:
        items = await work_items(env)
        return items[0].state == "stopped" and not dispatcher.containers(docker_client)

    # After `max_idle` the worker stops its item itself; the dispatcher removes the container.
    await wait_until(finished, "the worker to stop and its container to go", dispatcher.lines)
    assert any("the worker finished" in line for line in dispatcher.lines), dispatcher.lines
    # The worker synced the agent's write back before it stopped the item, as the session's.
    memories = [m async for m in admin.beta.memory_stores.memories.list(store.id, view="full")]
    assert {(m.path, m.content) for m in memories if m.type == "memory"} == {
        ("/facts.md", "the sky is teal"),
        ("/new.md", "violet\n"),
    }
    (version,) = [
        v async for v in admin.beta.memory_stores.memory_versions.list(store.id) if v.path == "/new.md"
    ]
    assert version.created_by is not None and version.created_by.type == "session_actor"
    assert version.created_by.session_id == session_id


async def test_a_stop_mid_session_ends_the_sandbox(
    env: SelfHosted, admin: SDK, dispatcher: Running, docker_client: docker.DockerClient
) -> None:
    session_id = await env.session(admin)
    await send(admin, session_id, message('/tool bash {"command": "sleep 120; echo too-late"}'))

    async def active() -> Any:
        items = await work_items(env)
        running = [c for c in dispatcher.containers(docker_client) if c.status == "running"]
        return items[0] if items and items[0].state == "active" and running else None

    item = await wait_until(active, "the sandbox to start the work", dispatcher.lines)
    await env.worker.beta.environments.work.stop(item.id, environment_id=env.environment_id)

    async def gone() -> bool:
        return (await work_items(env))[0].state == "stopped" and not dispatcher.containers(docker_client)

    await wait_until(gone, "the stopped work's sandbox to go", dispatcher.lines)
    events = await log(admin, session_id)
    assert not of_type(events, "user.tool_result")  # the sleep never finished


async def test_a_container_killed_mid_tool_is_replaced(
    env: SelfHosted, admin: SDK, dispatcher: Running, docker_client: docker.DockerClient
) -> None:
    session_id = await env.session(admin)
    command = "mkdir -p /root/marks; touch /workspace/started; sleep 4; echo survived"
    await send(admin, session_id, message('/tool bash {"command": "' + command + '"}'))

    async def tool_started() -> Any:
        for container in dispatcher.containers(docker_client):
            with contextlib.suppress(docker.errors.APIError):
                if container.exec_run(["test", "-e", "/workspace/started"]).exit_code == 0:
                    return container
        return None

    doomed = await wait_until(tool_started, "the first sandbox to start the tool", dispatcher.lines)
    doomed.kill()

    events = await ended_turn(admin, session_id, dispatcher.lines)
    (use,) = of_type(events, "agent.tool_use")
    results = of_type(events, "user.tool_result")
    assert [r.tool_use_id for r in results] == [use.id]  # answered once, by the replacement
    assert texts(events)[-1] == "Tool results:\nsurvived"
    (item,) = await work_items(env)  # the same work item went back to the queue
    assert "killed" in item.metadata[FAILURE_KEY]
    assert any("killed (exit status 137)" in line for line in dispatcher.lines), dispatcher.lines


def start_dispatch_process(
    url: str, env: SelfHosted, settings: Settings, output: IO[bytes]
) -> subprocess.Popen[bytes]:
    """`mas dispatch` as a user runs it, configured like the in-process dispatchers (same instance,
    state directory and networks), so that another dispatcher can take over its sandboxes."""
    names = ["sandbox_instance", "sandbox_state_dir", "sandbox_network", "sandbox_egress_network"]
    names += ["sandbox_memory_mb", "sandbox_pids", "sandbox_disk_mb"]
    configured = {f"MAS_{name.upper()}": str(getattr(settings, name)) for name in names}
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("MAS_", "ANTHROPIC_"))}
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "app", "dispatch"),
            *("--environment", env.environment_id, "--url", url, "--max-idle", f"{MAX_IDLE:g}"),
        ],
        cwd=ROOT,
        env={**environment, **configured, "MAS_DISPATCH_ENVIRONMENT_KEY": env.key},
        start_new_session=True,
        stdout=output,
        stderr=subprocess.STDOUT,
    )


async def test_a_restarted_dispatcher_adopts_the_sandboxes_of_one_that_died(
    env: SelfHosted,
    admin: SDK,
    queue_server: ServerThread,
    launcher_settings: Settings,
    docker_client: docker.DockerClient,
    tmp_path: Path,
) -> None:
    """A dispatcher killed mid-tool leaves its sandboxes running. The next one adopts a running one
    (relaying its API socket again) instead of starting a second sandbox for the session, removes
    it when its worker is done, and removes one that exited meanwhile, recording the failure."""
    adopted_session, crashed_session = await env.session(admin), await env.session(admin)
    output_path = tmp_path / "dead-dispatcher.log"
    naming = Naming(dispatch_settings(launcher_settings))
    filters = naming.filters("dispatch")
    filters["label"].append(f"mas.environment={env.environment_id}")
    with output_path.open("wb") as output:  # kept for a failing run's post-mortem
        dead = start_dispatch_process(queue_server.url, env, launcher_settings, output)
        try:
            for session_id, seconds in ((adopted_session, 5), (crashed_session, 300)):
                command = f"echo run >> /workspace/started; sleep {seconds}; echo survived"
                await send(admin, session_id, message('/tool bash {"command": "' + command + '"}'))

            async def tools_started() -> dict[str, Any] | None:
                if dead.poll() is not None:
                    raise AssertionError(f"mas dispatch exited: {output_path.read_text()}")
                started = {}
                for container in docker_client.containers.list(filters=filters, ignore_removed=True):
                    with contextlib.suppress(docker.errors.APIError):
                        if container.exec_run(["test", "-e", "/workspace/started"]).exit_code == 0:
                            started[container.labels["mas.agent-session"]] = container
                return started if len(started) == 2 else None

            lines = [f"(the first dispatcher's output is in {output_path})"]
            sandboxes = await wait_until(tools_started, "the first dispatcher's sandboxes to start", lines)
        finally:
            os.killpg(dead.pid, signal.SIGKILL)
            await asyncio.to_thread(dead.wait, 30)
    orphan, crashed = sandboxes[adopted_session], sandboxes[crashed_session]
    crashed.kill()  # exits while no dispatcher runs
    crashed_work = crashed.labels["mas.work"]
    orphan.reload()
    assert orphan.status == "running"  # a dispatcher's death leaves its sandboxes running

    async with dispatching(env, queue_server, launcher_settings, docker_client) as running:

        async def recovered() -> bool:
            adopted = f"adopted the running sandbox of {adopted_session}"
            removed = f"{crashed_work}: the sandbox was killed (exit status 137)"
            return any(adopted in line for line in running.lines) and any(
                line.startswith(removed) for line in running.lines
            )

        await wait_until(recovered, "the new dispatcher to adopt one, remove the other", running.lines)
        await admin.beta.sessions.archive(crashed_session)  # its work stops: it is not run again
        events = await ended_turn(admin, adopted_session, running.lines)
        (use,) = of_type(events, "agent.tool_use")
        assert [r.tool_use_id for r in of_type(events, "user.tool_result")] == [use.id]
        assert texts(events)[-1] == "Tool results:\nsurvived"

        async def items() -> dict[str, Any]:
            return {w.data.id: w for w in await work_items(env)}

        async def finished() -> bool:
            return (await items())[adopted_session].state == "stopped" and not running.containers(
                docker_client
            )

        await wait_until(finished, "the adopted worker to stop and its container to go", running.lines)
        by_session = await items()
        assert FAILURE_KEY not in by_session[adopted_session].metadata  # it finished the work itself
        assert "killed" in by_session[crashed_session].metadata[FAILURE_KEY]
        assert not any(f"started a sandbox for {adopted_session}" in line for line in running.lines)
