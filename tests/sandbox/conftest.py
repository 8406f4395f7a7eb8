"""Sandbox fixtures: real Docker (a unique mas.instance label per run, cleaned up at the end)
and the local backend. With CI=true an unreachable Docker engine fails instead of skipping.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import docker
import docker.errors
import pytest

from app.config import Settings
from app.sandbox import SandboxBackend, SandboxSpec
from app.sandbox.commands import build_base_image
from app.sandbox.docker_backend import DockerBackend
from app.sandbox.local_backend import LocalBackend
from tests.support import docker_engine, scratch

IN_CI = os.environ.get("CI", "").lower() == "true"
RUN = f"t{uuid.uuid4().hex[:8]}"


def sandbox_settings(state_dir: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "sandbox_instance": RUN,
        "sandbox_state_dir": state_dir,
        "sandbox_network": f"mas-{RUN}-sandbox",
        "sandbox_egress_network": f"mas-{RUN}-egress",
        "sandbox_memory_mb": 512,
        "sandbox_pids": 256,
        "sandbox_idle_stop_seconds": 3600.0,
        "sandbox_warm_pool": 0,  # the pool has its own tests (test_pool.py)
        **overrides,
    }
    return Settings(**values)


@pytest.fixture(scope="session")
def state_dir() -> Iterator[Path]:
    yield scratch.make_dir(RUN)


@pytest.fixture(scope="session")
def docker_client(state_dir: Path) -> Iterator[docker.DockerClient]:
    client = docker_engine.engine()
    settings = sandbox_settings(state_dir)
    if build_base_image(settings, echo=lambda _line: None) != 0:
        pytest.fail("sandbox/build-base.sh failed")
    yield client
    _cleanup(client)
    client.close()


def _cleanup(client: docker.DockerClient) -> None:
    """Everything this run created carries its instance label (images are kept: they are caches).
    The dispatcher's tests (tests/dispatch) use these fixtures under their own instance label."""
    for instance in (RUN, f"{RUN}-dispatch"):
        docker_engine.remove_containers(client, instance)
        for network in client.networks.list(filters={"label": f"mas.instance={instance}"}):
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                network.remove()


@pytest.fixture(scope="session")
async def docker_backend(docker_client: docker.DockerClient, state_dir: Path) -> AsyncIterator[DockerBackend]:
    backend = DockerBackend(sandbox_settings(state_dir))
    yield backend
    await backend.close()


@pytest.fixture(scope="session")
async def local_backend(state_dir: Path) -> AsyncIterator[LocalBackend]:
    backend = LocalBackend(sandbox_settings(state_dir))
    yield backend
    await backend.reap_orphans(set())
    await backend.close()


@pytest.fixture(params=[pytest.param("local"), pytest.param("docker", marks=pytest.mark.docker)])
def backend(request: pytest.FixtureRequest) -> SandboxBackend:
    return request.getfixturevalue(f"{request.param}_backend")  # type: ignore[no-any-return]


@pytest.fixture
async def session_id(backend: SandboxBackend) -> AsyncIterator[str]:
    """A fresh sandbox per test, removed afterwards."""
    sid = f"sesn_{uuid.uuid4().hex[:12]}"
    await backend.ensure(sid, SandboxSpec(env_id="env_test"))
    yield sid
    await backend.remove(sid)
