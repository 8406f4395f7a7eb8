"""github_repository resources on real Docker sandboxes, cloned from a real git smart-HTTP server
on loopback: the right branch or commit at the mount path, the token never echoed, never in the
database in clear and never in the container; a bad token or a missing repository is the
documented session.error and the session goes idle; a rotated token makes it work."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from tests.files.conftest import GIT_TOKEN, GitServer, bash
from tests.support import factories
from tests.support.loop import log, of_type, wait_idle
from tests.support.server import ServerThread

pytestmark = pytest.mark.docker


async def _session(client: anthropic.AsyncAnthropic, resources: list[dict[str, Any]]) -> str:
    agent = await client.beta.agents.create(
        name="repos", model="claude-sonnet-4-6", tools=[{"type": "agent_toolset_20260401"}]
    )
    environment = await client.beta.environments.create(name=f"repos-{agent.id[-8:]}")
    session = await client.beta.sessions.create(
        agent=agent.id,
        environment_id=environment.id,
        resources=resources,  # type: ignore[arg-type]
    )
    return session.id


async def _stored_text(server: ServerThread) -> str:
    engine = create_async_engine(server.settings.database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(sa.text("SELECT resources, resource_tokens FROM sessions"))
            return " ".join(str(value) for row in rows for value in row)
    finally:
        await engine.dispose()


async def test_cloned_at_the_branch_and_commit_without_the_token(
    docker_sdk: anthropic.AsyncAnthropic, git_server: GitServer, docker_server: ServerThread
) -> None:
    client = docker_sdk
    url = f"{git_server.url}/acme/widgets"
    session_id = await _session(
        client,
        [
            {
                "type": "github_repository",
                "url": url,
                "authorization_token": GIT_TOKEN,
                "checkout": {"type": "branch", "name": "feature"},
            },
            {
                "type": "github_repository",
                "url": url,
                "authorization_token": GIT_TOKEN,
                "checkout": {"type": "commit", "sha": git_server.commits["first"]},
                "mount_path": "/workspace/old",
            },
        ],
    )
    session = await client.beta.sessions.retrieve(session_id)
    assert [r.mount_path for r in session.resources] == ["/workspace/widgets", "/workspace/old"]
    assert "authorization_token" not in session.resources[0].model_dump()
    out, failed = await bash(
        client,
        session_id,
        "git -C /workspace/widgets rev-parse HEAD; git -C /workspace/old rev-parse HEAD;"
        " git -C /workspace/widgets remote get-url origin;"
        # The token is assembled in the shell: the command file itself must not hold it.
        f" t={GIT_TOKEN[:5]}; t=${{t}}{GIT_TOKEN[5:]};"
        ' grep -rsl "$t" /workspace /root /tmp /etc /mnt /run /opt | head -3; echo done',
    )
    assert not failed
    lines = out.splitlines()
    assert lines[:3] == [git_server.commits["feature"], git_server.commits["first"], url]
    assert lines[3:] == ["done"]  # the token is nowhere in the container
    assert GIT_TOKEN not in await _stored_text(docker_server)


@pytest.mark.parametrize(
    ("repo", "token", "kind"),
    [
        ("widgets", "wrong-token", "repository_authentication_error"),
        ("missing", GIT_TOKEN, "repository_not_found_error"),
    ],
)
async def test_clone_failures_are_session_errors_and_the_session_goes_on(
    docker_sdk: anthropic.AsyncAnthropic, git_server: GitServer, repo: str, token: str, kind: str
) -> None:
    client = docker_sdk
    url = f"{git_server.url}/acme/{repo}"
    session_id = await _session(
        client, [{"type": "github_repository", "url": url, "authorization_token": token}]
    )
    out, _ = await bash(client, session_id, f"ls /workspace/{repo} 2>&1; echo after")
    assert out.endswith("after") and "No such file" in out
    events = await wait_idle(client, session_id)
    errors = of_type(events, "session.error")
    assert len(errors) == 1 and errors[0].error.type == kind
    assert errors[0].error.retry_status.type == "retrying" and errors[0].error.repository_url == url
    if repo == "widgets":  # a rotated token: the next tool call finds the repository
        resource_id = factories.resource_id((await client.beta.sessions.retrieve(session_id)).resources[0])
        await client.beta.sessions.resources.update(
            resource_id, session_id=session_id, authorization_token=GIT_TOKEN
        )
        out, _ = await bash(client, session_id, "git -C /workspace/widgets rev-parse HEAD")
        assert out == git_server.commits["main"]
        assert len(of_type(await log(client, session_id), "session.error")) == 1
