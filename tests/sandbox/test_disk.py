"""The disk quota: a sandbox that fills its disk gets a clear error, the host's disk and state
directory are unaffected, and the next call works."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import docker
import pytest

from app.sandbox import SandboxSpec
from app.sandbox import disk as sandbox_disk
from app.sandbox.docker_backend import DockerBackend
from tests.sandbox.conftest import sandbox_settings
from tests.sandbox.support import bash, call, text

pytestmark = [pytest.mark.docker, pytest.mark.timeout(300)]
QUOTA_MB = 64


@pytest.fixture(scope="module")
async def quota_backend(docker_client: docker.DockerClient, state_dir: Path) -> AsyncIterator[DockerBackend]:
    backend = DockerBackend(sandbox_settings(state_dir, sandbox_disk_mb=QUOTA_MB))
    yield backend
    await backend.close()


@pytest.fixture
async def sid(quota_backend: DockerBackend) -> AsyncIterator[str]:
    session_id = f"sesn_{uuid.uuid4().hex[:12]}"
    await quota_backend.ensure(session_id, SandboxSpec(env_id="env_disk"))
    yield session_id
    await quota_backend.remove(session_id)


def allocated(path: Path) -> int:
    return path.stat().st_blocks * 512


async def test_a_disk_fill_fails_inside_and_leaves_the_host_alone(
    quota_backend: DockerBackend, sid: str
) -> None:
    session_dir = quota_backend.naming.session_dir(sid)
    fill = await bash(quota_backend, sid, f"dd if=/dev/zero of=/workspace/big bs=1M count={QUOTA_MB * 4}")
    image = sandbox_disk.image_path(session_dir)

    assert fill.is_error and "No space left on device" in text(fill)
    assert f"quota is {QUOTA_MB} MiB" in text(fill)  # the note says what the limit is
    assert allocated(image) <= (QUOTA_MB + 1) * 1024 * 1024
    full_write = await call(
        quota_backend, sid, "write", file_path="/workspace/more.txt", content="x" * 8_000_000
    )
    assert full_write.is_error and "No space left on device" in text(full_write)

    freed = await bash(
        quota_backend, sid, "rm /workspace/big && echo fine > /workspace/next && cat /workspace/next"
    )
    assert not freed.is_error and text(freed) == "fine"


@pytest.mark.parametrize("where", ["/tmp", "/root", "/var/tmp", "/mnt/session/outputs", "/run/mas"])
async def test_every_writable_place_shares_the_quota(
    quota_backend: DockerBackend, sid: str, where: str
) -> None:
    fill = await bash(
        quota_backend, sid, f"dd if=/dev/zero of={where}/big bs=1M count={QUOTA_MB * 2}; rm -f {where}/big"
    )
    assert "No space left on device" in text(fill)


@pytest.mark.parametrize("where", ["/", "/usr/local", "/etc", "/var/lib", "/opt"])
async def test_the_root_filesystem_is_read_only(quota_backend: DockerBackend, sid: str, where: str) -> None:
    write = await bash(quota_backend, sid, f"echo x > {where}/probe")
    assert write.is_error and "Read-only file system" in text(write)


async def test_nothing_the_sandbox_writes_lands_in_the_host_state_directory(
    quota_backend: DockerBackend, sid: str
) -> None:
    """The host directory next to the server's state holds the disk image, its mount point and
    links; writes from every writable place end up inside the image."""
    session_dir = quota_backend.naming.session_dir(sid)
    await bash(
        quota_backend, sid, "for d in /workspace /tmp /root /var/tmp /run/mas; do echo x > $d/planted; done"
    )
    outside = [
        path
        for path in session_dir.rglob("*")
        if not path.is_relative_to(sandbox_disk.mount_point(session_dir)) and path.name == "planted"
    ]
    assert outside == []
    # `uploads` is the server-written source of the read-only /mnt/session/uploads mount.
    assert sorted(p.name for p in session_dir.iterdir()) == ["disk", "disk.img", "run", "uploads"]


async def test_the_disk_is_sized_and_goes_with_the_session(
    quota_backend: DockerBackend,
) -> None:
    session_id = f"sesn_{uuid.uuid4().hex[:12]}"
    await quota_backend.ensure(session_id, SandboxSpec(env_id="env_disk"))
    session_dir = quota_backend.naming.session_dir(session_id)
    size = await bash(quota_backend, session_id, "df -m --output=size /workspace | tail -1")
    mount = sandbox_disk.mount_point(session_dir)
    assert mount.is_mount()
    await quota_backend.remove(session_id)

    assert int(text(size)) <= QUOTA_MB
    assert not mount.is_mount() and not session_dir.exists()


async def test_an_adopted_warm_sandbox_brings_its_disk_and_takes_it_away(
    docker_client: docker.DockerClient, state_dir: Path
) -> None:
    backend = DockerBackend(sandbox_settings(state_dir, sandbox_disk_mb=QUOTA_MB, sandbox_warm_pool=1))
    spec = SandboxSpec(env_id="env_disk_pool")
    try:
        await backend.prewarm(spec)
        for _ in range(600):
            if backend.pool.keys():
                break
            await asyncio.sleep(0.1)
        (pool_key,) = backend.pool.keys()
        session_id = f"sesn_{uuid.uuid4().hex[:12]}"
        await backend.ensure(session_id, spec)
        pool_dir = backend.naming.session_dir(pool_key)
        fill = await bash(backend, session_id, f"dd if=/dev/zero of=big bs=1M count={QUOTA_MB * 2}")
        assert "No space left on device" in text(fill) and sandbox_disk.mount_point(pool_dir).is_mount()
        await backend.remove(session_id)
        assert not pool_dir.exists() and not backend.naming.session_dir(session_id).exists()
    finally:
        await backend.close()
