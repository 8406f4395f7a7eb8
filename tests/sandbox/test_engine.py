"""The engine adapter on the real Docker engine: shared networks created once (threads, warm pool
and other processes racing on a fresh engine), engine errors typed, a hung engine timed out, and
recovery once it answers again."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from app.sandbox import SandboxSpec, docker_backend
from app.sandbox.docker_backend import DockerBackend
from app.sandbox.engine import EngineError, EngineUnavailable
from app.sandbox.shared import ensure_network
from app.shared.environment_config import NetworkingConfig
from tests.sandbox.conftest import RUN, sandbox_settings
from tests.sandbox.support import bash, text
from tests.support.server import ROOT

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]

LIMITED: NetworkingConfig = {
    "type": "limited",
    "allowed_hosts": [],
    "allow_package_managers": False,
    "allow_mcp_servers": False,
}


def new_id() -> str:
    return f"sesn_{uuid.uuid4().hex[:12]}"


def networks_named(client: docker.DockerClient, name: str) -> list[Any]:
    return [n for n in client.networks.list(names=[name]) if n.name == name]


@pytest.fixture
async def fresh(docker_client: docker.DockerClient, tmp_path: Path) -> AsyncIterator[DockerBackend]:
    """A backend whose networks do not exist yet (new names), with a warm pool that races too."""
    suffix = uuid.uuid4().hex[:6]
    settings = sandbox_settings(
        tmp_path,
        sandbox_network=f"mas-{RUN}-fresh-{suffix}",
        sandbox_egress_network=f"mas-{RUN}-fresh-egress-{suffix}",
        sandbox_warm_pool=2,
    )
    backend = DockerBackend(settings)
    yield backend
    await backend.reap_orphans(set())
    await backend.close()
    for name in (settings.sandbox_network, settings.sandbox_egress_network):
        for network in networks_named(docker_client, name):
            network.remove()


async def test_concurrent_first_sessions_on_a_fresh_engine_create_each_network_once(
    fresh: DockerBackend, docker_client: docker.DockerClient
) -> None:
    settings = fresh.settings
    assert not networks_named(docker_client, settings.sandbox_network)
    plain = [new_id() for _ in range(6)]
    limited = [new_id() for _ in range(2)]
    await asyncio.gather(
        fresh.prewarm(SandboxSpec(env_id="env_fresh")),
        *(fresh.ensure(s, SandboxSpec(env_id="env_fresh")) for s in plain),
        *(fresh.ensure(s, SandboxSpec(env_id="env_fresh", networking=LIMITED)) for s in limited),
    )
    assert len(networks_named(docker_client, settings.sandbox_network)) == 1
    assert len(networks_named(docker_client, settings.sandbox_egress_network)) == 1
    for session_id in plain:
        assert text(await bash(fresh, session_id, "echo up")) == "up"
        container = docker_client.containers.get(fresh.naming.container(session_id))
        assert list(container.attrs["NetworkSettings"]["Networks"]) == [settings.sandbox_network]
    for session_id in limited:
        assert text(await bash(fresh, session_id, "echo up")) == "up"


def _ensure_from_threads(name: str, lock_dir: Path, count: int) -> list[str]:
    client = docker.from_env()
    labels = {"mas.managed": "1", "mas.instance": RUN, "mas.role": "shared-network"}
    ids: list[str] = []

    def one() -> None:
        ids.append(ensure_network(client, lock_dir, name, labels, {}))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    return ids


CHILD = """
import json, sys
from pathlib import Path
from tests.sandbox.test_engine import _ensure_from_threads
print(json.dumps(_ensure_from_threads(sys.argv[1], Path(sys.argv[2]), 4)))
"""


def test_processes_and_threads_racing_for_a_network_agree_on_one_id(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    name = f"mas-{RUN}-race-{uuid.uuid4().hex[:6]}"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, name, str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        mine = _ensure_from_threads(name, tmp_path, 4)
        theirs = [json.loads(c.communicate(timeout=120)[0]) for c in children]
        ids = set(mine) | {i for ids in theirs for i in ids}
        assert len(mine) == 4 and all(len(t) == 4 for t in theirs)
        assert len(ids) == 1
        assert [n.id for n in networks_named(docker_client, name)] == list(ids)
    finally:
        for network in networks_named(docker_client, name):
            network.remove()


def failing(operation: str, error: Exception) -> Callable[[str], None]:
    def fault(what: str) -> None:
        if what == operation:
            raise error

    return fault


async def test_an_engine_error_is_a_typed_error_naming_the_operation(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    backend = DockerBackend(sandbox_settings(tmp_path))
    backend.engine.fault = failing("create the sandbox container", docker.errors.APIError("injected refusal"))
    session_id = new_id()
    try:
        with pytest.raises(EngineError) as caught:
            await backend.ensure(session_id, SandboxSpec(env_id="env_fault"))
        assert "create the sandbox container" in str(caught.value)
        assert "injected refusal" in str(caught.value)
        assert backend.health() is None  # the engine answered: it refused, it is not down

        backend.engine.fault = None
        await backend.ensure(session_id, SandboxSpec(env_id="env_fault"))
        assert text(await bash(backend, session_id, "echo recovered")) == "recovered"
    finally:
        await backend.remove(session_id)
        await backend.close()


async def test_a_hung_engine_times_out_is_reported_unavailable_and_recovers(
    docker_client: docker.DockerClient, tmp_path: Path
) -> None:
    backend = DockerBackend(sandbox_settings(tmp_path))
    backend.engine.timeout_s = 1.0  # short while the engine hangs; real calls get the default again
    answer = threading.Event()

    def hang(_what: str) -> None:  # every call hangs until released
        answer.wait(120)

    backend.engine.fault = hang
    session_id = new_id()
    try:
        with pytest.raises(EngineUnavailable) as caught:
            await backend.ensure(session_id, SandboxSpec(env_id="env_hang"))
        assert "did not answer" in str(caught.value)
        assert backend.health() is not None
        # More calls than engine threads: they time out waiting, none piles up a thread.
        outcomes = await asyncio.gather(
            *(backend.ensure(new_id(), SandboxSpec(env_id="env_hang")) for _ in range(12)),
            return_exceptions=True,
        )
        assert all(isinstance(o, EngineUnavailable) for o in outcomes)

        answer.set()
        backend.engine.fault = None
        backend.engine.timeout_s = backend.settings.sandbox_engine_timeout_seconds
        await backend.ensure(session_id, SandboxSpec(env_id="env_hang"))
        assert text(await bash(backend, session_id, "echo recovered")) == "recovered"
        assert backend.health() is None
    finally:
        answer.set()
        await backend.remove(session_id)
        await backend.close()


async def test_a_tree_copied_in_gets_a_deadline_by_its_size(
    docker_client: docker.DockerClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repository is copied into the sandbox in one engine call: its deadline grows with the
    archive (here 1 MiB/s on top of the engine's), so a large one is not cut off by the deadline
    of a quick call, while the same slow engine still times out a small copy."""
    monkeypatch.setattr(docker_backend, "COPY_BYTES_PER_SECOND", 1024 * 1024)
    large, small = tmp_path / "large", tmp_path / "small"
    (large / "data").mkdir(parents=True)
    small.mkdir()
    digest = hashlib.sha256()
    for i in range(3):
        chunk = os.urandom(16 * 1024 * 1024)
        (large / "data" / f"part{i}.bin").write_bytes(chunk)
        digest.update(chunk)
    (small / "README").write_text("small\n")
    backend = DockerBackend(sandbox_settings(tmp_path / "state"))
    session_id = new_id()
    try:
        await backend.ensure(session_id, SandboxSpec(env_id="env_copy"))
        backend.engine.timeout_s = 10.0
        slow = "copy a repository into the sandbox"
        backend.engine.fault = lambda what: time.sleep(12) if what == slow else None
        assert await backend.put_tree(session_id, large, "/workspace/large") is True
        with pytest.raises(EngineUnavailable):
            await backend.put_tree(session_id, small, "/workspace/small")
        backend.engine.fault = None
        backend.engine.timeout_s = backend.settings.sandbox_engine_timeout_seconds
        assert await backend.put_tree(session_id, large, "/workspace/large") is False  # there already
        command = "cat /workspace/large/data/part0.bin /workspace/large/data/part1.bin "
        command += "/workspace/large/data/part2.bin | sha256sum"
        assert text(await bash(backend, session_id, command)).split()[0] == digest.hexdigest()
    finally:
        await backend.remove(session_id)
        await backend.close()
