"""A loop server whose sandboxes are real Docker containers, for the mount and output tests."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import docker
import docker.errors
import pytest

from tests.support.git_server import git_http_server, make_repository
from tests.support.loop import loop_server, of_type, result_text, sdk, turn
from tests.support.server import ServerThread

GIT_TOKEN = "ghp_files_test_token"


@dataclass(frozen=True)
class GitServer:
    url: str
    commits: dict[str, str]
    root: Path  # where the served bare repositories are (tests may add their own)


@pytest.fixture(scope="session")
def git_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    """A real git smart-HTTP server on loopback serving acme/widgets, token required."""
    root = tmp_path_factory.mktemp("git-repos")
    commits = make_repository(root, "acme", "widgets")
    with git_http_server(root, token=GIT_TOKEN) as url:
        yield GitServer(url, commits, root)


@pytest.fixture(scope="session")
def docker_server(
    backend: str, tmp_path_factory: pytest.TempPathFactory, git_server: GitServer
) -> Iterator[ServerThread]:
    """Warm pool on, so sessions adopt pre-started containers as in production."""
    try:
        engine = docker.from_env()
        engine.ping()
    except docker.errors.DockerException as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but Docker is unreachable: {exc}")
        pytest.skip(f"Docker is unreachable: {exc}")
    directory = tmp_path_factory.mktemp(f"files-docker-{backend}")
    servers = loop_server(
        backend, directory, sandbox_backend="docker", sandbox_warm_pool=1, github_base_url=git_server.url
    )
    server = next(servers)
    try:
        yield server
    finally:
        with contextlib.suppress(StopIteration):
            next(servers)
        label = {"label": f"mas.instance={server.settings.sandbox_instance}"}
        for container in engine.containers.list(all=True, filters=label):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        engine.close()


@pytest.fixture
async def docker_sdk(docker_server: ServerThread) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with sdk(docker_server.url) as client:
        yield client


async def bash(client: anthropic.AsyncAnthropic, session_id: str, command: str) -> tuple[str, bool]:
    """Run one bash call through a whole turn; its output and whether it failed."""
    events = await turn(client, session_id, "/tool bash " + json.dumps({"command": command}))
    result = of_type(events, "agent.tool_result")[-1]
    return result_text(result), bool(result.is_error)
