"""A loop server whose sandboxes are real Docker containers, for the mount and output tests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import anthropic
import pytest

from tests.support.docker_engine import docker_loop_server
from tests.support.git_server import git_http_server, make_repository
from tests.support.loop import of_type, result_text, sdk, turn
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
    directory = tmp_path_factory.mktemp(f"files-docker-{backend}")
    yield from docker_loop_server(backend, directory, sandbox_warm_pool=1, github_base_url=git_server.url)


@pytest.fixture
async def docker_sdk(docker_server: ServerThread) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with sdk(docker_server.url) as client:
        yield client


async def bash(client: anthropic.AsyncAnthropic, session_id: str, command: str) -> tuple[str, bool]:
    """Run one bash call through a whole turn; its output and whether it failed."""
    events = await turn(client, session_id, "/tool bash " + json.dumps({"command": command}))
    result = of_type(events, "agent.tool_result")[-1]
    return result_text(result), bool(result.is_error)
