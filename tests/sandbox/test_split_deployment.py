"""Split deployment on PostgreSQL and the real Docker engine: `mas serve` without a worker and a
separate `mas worker` process. Session create, interrupt and delete reach the worker: it starts
the sandbox before any tool call, an interrupt kills a sleeping tool, and a deleted session's
container is removed without restarting the worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import docker
import pytest

from tests.sandbox.conftest import RUN, sandbox_settings
from tests.support.hardening import interrupt_kills_a_sleeping_tool, tool, wait_idle
from tests.support.loop import (
    fresh_database,
    new_session,
    of_type,
    process_environment,
    result_text,
    sdk,
    send,
)
from tests.support.server import ServerProcess

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600)]

SDK = anthropic.AsyncAnthropic
DEADLINE = 180.0  # processes and containers start slowly on a loaded machine


@dataclass
class Split:
    client: SDK
    docker: docker.DockerClient


@pytest.fixture(scope="module")
def split_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    directory = tmp_path_factory.mktemp("split")
    for url in fresh_database("postgres", directory):
        yield url, directory


@pytest.fixture(scope="module")
async def split(docker_client: docker.DockerClient, split_database: tuple[str, Path]) -> AsyncIterator[Split]:
    url, directory = split_database
    settings = sandbox_settings(directory / "sandbox")
    env = {
        **process_environment(url, directory, lease_seconds=5),
        "MAS_SANDBOX_BACKEND": "docker",
        "MAS_SANDBOX_INSTANCE": RUN,
        "MAS_SANDBOX_NETWORK": settings.sandbox_network,
        "MAS_SANDBOX_EGRESS_NETWORK": settings.sandbox_egress_network,
        "MAS_SANDBOX_WARM_POOL": "0",
        "MAS_SANDBOX_PIDS": "256",
    }
    processes: list[ServerProcess] = []
    try:
        api = await asyncio.to_thread(ServerProcess({**env, "MAS_EMBEDDED_WORKER": "false"}).start)
        processes.append(api)
        worker = ServerProcess({**env, "MAS_PUBLIC_URL": api.url}, args=["worker"])
        processes.append(worker.start(wait_http=False))
        async with sdk(api.url) as client:
            # A turn done by the worker: from then on it listens (notifications are not queued
            # for a process that has not started yet).
            warm_up = await new_session(client)
            await send(client, warm_up, tool("true"))
            await wait_idle(client, warm_up, patience=DEADLINE)
            yield Split(client, docker_client)
    finally:
        for process in reversed(processes):
            await asyncio.to_thread(process.stop)


def containers_of(client: docker.DockerClient, session_id: str) -> list[str]:
    labels = ["mas.managed=1", f"mas.instance={RUN}", f"mas.session={session_id}"]
    # ignore_removed: the list inspects each container, and delete may remove one in between.
    found = client.containers.list(all=True, filters={"label": labels}, ignore_removed=True)
    return [c.name for c in found]


async def wait_until(check: object, what: str) -> None:
    assert callable(check)
    deadline = time.monotonic() + DEADLINE
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"never happened: {what}"
        await asyncio.sleep(0.2)


async def test_create_reaches_the_worker_and_delete_removes_the_container(split: Split) -> None:
    session_id = await new_session(split.client)
    # No tool call yet: only the create notification can have told the worker to provision.
    await wait_until(lambda: containers_of(split.docker, session_id), "the worker created the sandbox")

    await send(split.client, session_id, tool("echo from the worker"))
    events = await wait_idle(split.client, session_id, patience=DEADLINE)
    assert result_text(of_type(events, "agent.tool_result")[0]) == "from the worker"

    await split.client.beta.sessions.delete(session_id)
    await wait_until(lambda: not containers_of(split.docker, session_id), "the container was removed")


async def test_an_interrupt_reaches_the_worker(split: Split) -> None:
    await interrupt_kills_a_sleeping_tool(split.client, DEADLINE)
