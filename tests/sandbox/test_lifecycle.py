"""Per-session containers on the real engine: hardening, isolation, re-attach, idle stop, reaping,
resource limits."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import docker
import docker.errors
import pytest

from app.sandbox import SandboxNotFound, SandboxSpec, ToolRequest
from app.sandbox.docker_backend import DockerBackend
from app.shared.environment_config import NetworkingConfig
from tests.sandbox.conftest import RUN, sandbox_settings
from tests.sandbox.support import bash, text

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]


def new_id() -> str:
    return f"sesn_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def sid(docker_backend: DockerBackend) -> AsyncIterator[str]:
    session = new_id()
    await docker_backend.ensure(session, SandboxSpec(env_id="env_test"))
    yield session
    await docker_backend.remove(session)


async def test_container_is_labelled_limited_and_hardened(docker_backend: DockerBackend, sid: str) -> None:
    container = docker_backend.client.containers.get(docker_backend.naming.container(sid))
    config, host = container.attrs["Config"], container.attrs["HostConfig"]
    assert config["Labels"]["mas.session"] == sid and config["Labels"]["mas.managed"] == "1"
    assert config["Labels"]["mas.instance"] == RUN
    assert config["WorkingDir"] == "/workspace"
    assert host["Memory"] == 512 * 1024 * 1024 and host["PidsLimit"] == 256 and host["NanoCpus"] == 10**9
    assert host["CapDrop"] == ["ALL"] and "SYS_ADMIN" not in host["CapAdd"]
    assert "no-new-privileges:true" in host["SecurityOpt"]
    assert not any("docker.sock" in m["Source"] for m in container.attrs["Mounts"])
    outputs = await bash(
        docker_backend, sid, "touch /mnt/session/outputs/report.txt && ls /mnt/session/outputs"
    )
    assert text(outputs) == "report.txt"


async def test_sessions_do_not_share_files(docker_backend: DockerBackend, sid: str) -> None:
    other = new_id()
    await docker_backend.ensure(other, SandboxSpec(env_id="env_test"))
    try:
        await bash(docker_backend, sid, "echo mine > /workspace/secret.txt")
        seen = await bash(docker_backend, other, "cat /workspace/secret.txt")
    finally:
        await docker_backend.remove(other)
    assert seen.is_error and "No such file" in text(seen)


async def test_a_new_backend_reattaches_to_the_running_container(
    docker_backend: DockerBackend, sid: str, state_dir: Path
) -> None:
    await bash(docker_backend, sid, "cd /tmp && export MARK=still-here && echo data > kept.txt")
    restarted = DockerBackend(sandbox_settings(state_dir))
    try:
        result = await restarted.execute(
            sid, ToolRequest("bash", {"command": "pwd; echo $MARK; cat kept.txt"})
        )
    finally:
        await restarted.close()
    assert text(result) == "/tmp\nstill-here\ndata"


async def test_idle_sandboxes_stop_and_start_again_with_their_files(
    state_dir: Path, docker_client: object
) -> None:
    backend = DockerBackend(sandbox_settings(state_dir, sandbox_idle_stop_seconds=1.0))
    session = new_id()
    try:
        await backend.ensure(session, SandboxSpec(env_id="env_test"))
        await bash(backend, session, "echo survived > /workspace/file.txt")
        container = backend.client.containers.get(backend.naming.container(session))
        for _ in range(600):  # the idle loop checks every 0.25 s here; generous for a loaded machine
            await asyncio.sleep(0.2)
            container.reload()
            if container.status == "exited":
                break
        assert container.status == "exited"
        assert text(await bash(backend, session, "cat /workspace/file.txt")) == "survived"
    finally:
        await backend.remove(session)
        await backend.close()


async def test_remove_deletes_containers_and_state(docker_backend: DockerBackend) -> None:
    session = new_id()
    limited: NetworkingConfig = {"type": "limited", "allowed_hosts": []}
    await docker_backend.ensure(session, SandboxSpec(env_id="env_test", networking=limited))
    await docker_backend.remove(session)
    client = docker_backend.client
    for name in (docker_backend.naming.container(session), docker_backend.naming.proxy(session)):
        with pytest.raises(docker.errors.NotFound):
            client.containers.get(name)
    assert not docker_backend.naming.session_dir(session).exists()
    with pytest.raises(SandboxNotFound):
        await docker_backend.execute(session, ToolRequest("bash", {"command": "true"}))


async def test_reap_orphans_removes_only_dead_sessions(docker_backend: DockerBackend) -> None:
    live, dead = new_id(), new_id()
    for session in (live, dead):
        await docker_backend.ensure(session, SandboxSpec(env_id="env_test"))
    try:
        reaped = await docker_backend.reap_orphans({live})
        names = {
            c.name
            for c in docker_backend.client.containers.list(
                all=True, filters={"label": f"mas.instance={RUN}"}, ignore_removed=True
            )
        }
    finally:
        await docker_backend.remove(live)
    assert reaped >= 1
    assert docker_backend.naming.container(live) in names
    assert docker_backend.naming.container(dead) not in names


async def test_fork_bomb_is_contained(docker_backend: DockerBackend, sid: str) -> None:
    result = await bash(docker_backend, sid, "bomb() { bomb | bomb; }; bomb", timeout_ms=4000)
    assert result.is_error  # cut off at its time limit (forks fail at the pids limit meanwhile)
    assert len(os.listdir("/proc")) < 5000  # the host's process table is not flooded
    assert text(await bash(docker_backend, sid, "echo alive")) == "alive"
    stats = docker_backend.client.api.inspect_container(docker_backend.naming.container(sid))
    assert stats["State"]["Running"]


async def test_memory_hog_is_contained(docker_backend: DockerBackend, sid: str) -> None:
    result = await bash(docker_backend, sid, "python3 -c 'b = bytearray(2 * 1024**3); print(len(b))'")
    assert result.is_error and "2147483648" not in text(result)
    assert text(await bash(docker_backend, sid, "echo alive")) == "alive"
