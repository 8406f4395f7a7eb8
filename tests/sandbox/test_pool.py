"""The warm pool: a new session adopts an already started sandbox, which then behaves like any
other (isolated files, re-attach after a restart, removal of everything)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import docker
import pytest

from app.sandbox import SandboxSpec
from app.sandbox.docker_backend import DockerBackend
from tests.sandbox.conftest import sandbox_settings
from tests.sandbox.support import bash, text

pytestmark = [pytest.mark.docker, pytest.mark.timeout(180)]


def new_id() -> str:
    return f"sesn_{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def pooled(docker_client: docker.DockerClient, tmp_path: Path) -> AsyncIterator[DockerBackend]:
    backend = DockerBackend(sandbox_settings(tmp_path, sandbox_warm_pool=1))
    yield backend
    await backend.reap_orphans(set())
    await backend.close()


async def warmed(backend: DockerBackend, image: str) -> None:
    for _ in range(300):
        if backend.pool.ready(image):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("the pool never got a warm sandbox")


async def test_a_session_adopts_a_warm_sandbox(pooled: DockerBackend) -> None:
    spec = SandboxSpec(env_id="env_pool")
    await pooled.prewarm(spec)
    image = pooled.settings.sandbox_base_image
    await warmed(pooled, image)
    (warm_key,) = pooled.pool.keys()
    warm_id = pooled.client.containers.get(pooled.naming.container(warm_key)).id

    first, second = new_id(), new_id()
    await pooled.ensure(first, spec)
    adopted = pooled.client.containers.get(pooled.naming.container(first))
    assert adopted.id == warm_id  # no container was started for the session itself
    assert text(await bash(pooled, first, "echo mine > /workspace/f && pwd")) == "/workspace"

    await warmed(pooled, image)  # refilled after the adoption
    await pooled.ensure(second, spec)
    seen = await bash(pooled, second, "cat /workspace/f")
    assert seen.is_error and "No such file" in text(seen)


async def test_adopted_sandbox_survives_a_restart_and_is_removed_whole(
    pooled: DockerBackend, tmp_path: Path
) -> None:
    spec = SandboxSpec(env_id="env_pool")
    await pooled.prewarm(spec)
    await warmed(pooled, pooled.settings.sandbox_base_image)
    sid = new_id()
    await pooled.ensure(sid, spec)
    await bash(pooled, sid, "echo kept > /workspace/f")

    await pooled.stop(sid)  # as after an idle timeout: files stay, the container restarts on use
    restarted = DockerBackend(sandbox_settings(tmp_path, sandbox_warm_pool=0))
    try:
        assert text(await bash(restarted, sid, "cat /workspace/f")) == "kept"
        assert await restarted.reap_orphans({sid}) == 0  # known by name, not mistaken for an orphan
        await restarted.remove(sid)
    finally:
        await restarted.close()
    with pytest.raises(docker.errors.NotFound):
        pooled.client.containers.get(pooled.naming.container(sid))
