"""Environment images on the real engine: apt, pip and cargo really install; one build per spec."""

from __future__ import annotations

import asyncio
import contextlib
import io
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from app.sandbox import ImageBuildError, SandboxSpec
from app.sandbox.build_steps import image_tag
from app.sandbox.docker_backend import DockerBackend
from app.sandbox.engine import Engine
from app.sandbox.images import ImageBuilder
from tests.sandbox.conftest import RUN, sandbox_settings
from tests.sandbox.support import bash, text

pytestmark = [pytest.mark.docker, pytest.mark.timeout(600), pytest.mark.slow]

APT_PIP = {"apt": ["cowsay"], "pip": ["six==1.16.0"]}
# A crate with no dependencies (its binary prints "Hello, world!"): the test is cargo's path through
# the image builder (fetch from crates.io, compile, binary on PATH), not compiling a big tree, which
# took minutes with hyperfine.
CARGO = {"cargo": ["fortune@0.2.0"]}


class Progress:
    def __init__(self) -> None:
        self.lines: list[str] = []

    async def __call__(self, line: str) -> None:
        self.lines.append(line)


@pytest.fixture
async def session(docker_backend: DockerBackend) -> AsyncIterator[str]:
    sid = f"sesn_{uuid.uuid4().hex[:12]}"
    yield sid
    await docker_backend.remove(sid)


async def test_apt_and_pip_packages_are_installed(docker_backend: DockerBackend, session: str) -> None:
    await docker_backend.ensure(session, SandboxSpec(env_id="env_apt_pip", packages=APT_PIP))
    moo = await bash(docker_backend, session, "/usr/games/cowsay moo | grep -c moo")
    assert text(moo) == "1"
    six = await bash(docker_backend, session, "python3 -c 'import six; print(six.__version__)'")
    assert text(six) == "1.16.0"


async def test_cargo_package_is_installed(docker_backend: DockerBackend, session: str) -> None:
    await docker_backend.ensure(session, SandboxSpec(env_id="env_cargo", packages=CARGO))
    assert text(await bash(docker_backend, session, "command -v fortune && fortune")) == (
        "/usr/local/bin/fortune\nHello, world!"
    )


async def test_second_session_reuses_the_image(docker_backend: DockerBackend) -> None:
    first, second = (f"sesn_{uuid.uuid4().hex[:12]}" for _ in range(2))
    progress = Progress()
    try:
        await docker_backend.ensure(first, SandboxSpec(env_id="env_apt_pip", packages=APT_PIP))
        await docker_backend.ensure(second, SandboxSpec(env_id="env_apt_pip", packages=APT_PIP), progress)
        images = {
            docker_backend.client.containers.get(docker_backend.naming.container(s)).image.id
            for s in (first, second)
        }
    finally:
        await docker_backend.remove(first)
        await docker_backend.remove(second)
    assert len(images) == 1
    assert not any(line.startswith("Step ") for line in progress.lines)
    assert any(line.startswith("Using cached environment image mas-env:") for line in progress.lines)


@pytest.fixture(scope="module")
def fresh_base(docker_client: docker.DockerClient) -> Iterator[str]:
    """A base image new to this run, so builds on it are really built (and then deleted)."""
    tag = f"mas-test-base:{RUN}"
    docker_client.images.build(
        fileobj=_dockerfile(f"FROM mas-sandbox-base:bookworm\nLABEL mas.test={RUN}\n"), tag=tag, rm=True
    )
    yield tag
    base_id = docker_client.images.get(tag).id
    for packages in ({"pip": ["six==1.16.0"]}, {"pip": ["mas-no-such-package-xyz==0.0.1"]}):
        with contextlib.suppress(docker.errors.ImageNotFound):
            docker_client.images.remove(image_tag(base_id, packages), force=True)
    docker_client.images.remove(tag, force=True)


def engine_of(client: docker.DockerClient) -> Engine:
    return Engine(lambda: client, timeout_s=60.0, concurrency=4)


def _dockerfile(content: str) -> io.BytesIO:
    return io.BytesIO(content.encode())


async def test_concurrent_requests_build_once(
    docker_client: docker.DockerClient, state_dir: Path, fresh_base: str
) -> None:
    settings = sandbox_settings(state_dir, sandbox_base_image=fresh_base)
    builder = ImageBuilder(engine_of(docker_client), settings)
    progress = [Progress(), Progress()]
    tags = await asyncio.gather(*(builder.ensure({"pip": ["six==1.16.0"]}, p) for p in progress))
    assert tags[0] == tags[1]
    built = [p for p in progress if any(line.startswith("Step ") for line in p.lines)]
    assert len(built) == 1
    assert any("Using cached" in line for p in progress for line in p.lines)


async def test_failed_build_raises_with_the_managers_output_and_tags_nothing(
    docker_client: docker.DockerClient, state_dir: Path, fresh_base: str
) -> None:
    settings = sandbox_settings(state_dir, sandbox_base_image=fresh_base)
    builder = ImageBuilder(engine_of(docker_client), settings)
    packages = {"pip": ["mas-no-such-package-xyz==0.0.1"]}
    with pytest.raises(ImageBuildError) as caught:
        await builder.ensure(packages)
    assert caught.value.manager == "pip"
    assert "mas-no-such-package-xyz" in caught.value.output
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(image_tag(docker_client.images.get(fresh_base).id, packages))
