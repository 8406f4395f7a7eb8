"""The Docker engine for tests that need it, and loop servers whose sandboxes are Docker containers."""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from pathlib import Path

import docker
import docker.errors
import pytest

from tests.conftest import IN_CI
from tests.support import scratch
from tests.support.loop import loop_server
from tests.support.server import ServerThread


def engine() -> docker.DockerClient:
    """A client of the engine; an unreachable engine fails the test with CI=true, else skips it."""
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        if IN_CI:
            pytest.fail(f"CI=true but Docker is unreachable: {exc}")
        pytest.skip(f"Docker is unreachable: {exc}")
    return client


def remove_containers(client: docker.DockerClient, instance: str) -> None:
    """Every container of a mas instance (its label), running or not."""
    label = {"label": f"mas.instance={instance}"}
    for container in client.containers.list(all=True, filters=label, ignore_removed=True):
        with contextlib.suppress(docker.errors.NotFound):
            container.remove(force=True)


def docker_loop_server(
    backend: str, directory: Path, **overrides: object
) -> Generator[ServerThread, None, None]:
    """`loop_server` on the Docker backend; the server's containers are removed after it stops."""
    client = engine()
    servers = loop_server(backend, directory, sandbox_backend="docker", **overrides)
    server = next(servers)
    try:
        yield server
    finally:
        with contextlib.suppress(StopIteration):
            next(servers)
        remove_containers(client, server.settings.sandbox_instance)
        client.close()
        scratch.unmount_under(server.settings.sandbox_state_dir)
