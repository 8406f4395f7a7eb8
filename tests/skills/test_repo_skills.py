"""Skills in a repository resource's ``.claude/skills/``, on the real Docker engine with a real git
server, through the strict SDK: listed in the first request's system prompt with their path inside
the container, read there by the agent with the read tool; a bad SKILL.md is skipped with a note
saying why; without the read tool nothing is listed."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from tests.files.conftest import GIT_TOKEN, GitServer
from tests.skills.factories import skill_md, unique_name
from tests.support.factories import MODEL
from tests.support.git_server import add_repository
from tests.support.loop import TOOLSET, of_type, result_text, texts, turn

pytestmark = pytest.mark.docker

DESCRIPTION = "Ships the widgets. Use when asked to deploy."


def _repository(git_server: GitServer) -> tuple[str, str]:
    """A repository with one good and one broken skill: (its URL, its mount path)."""
    name = unique_name("skilled")
    add_repository(
        git_server.root,
        "acme",
        name,
        {
            "README.md": b"widgets\n",
            ".claude/skills/deploy/SKILL.md": skill_md("deploy", DESCRIPTION, "Run make ship."),
            ".claude/skills/broken/SKILL.md": b"---\nname: broken\n---\nno description\n",
        },
    )
    return f"{git_server.url}/acme/{name}", f"/workspace/{name}"


async def _session(client: anthropic.AsyncAnthropic, url: str, tools: dict[str, Any] = TOOLSET) -> str:
    agent = await client.beta.agents.create(name="repo-skills", model=MODEL, tools=[tools])  # type: ignore[list-item]
    environment = await client.beta.environments.create(name=f"repo-skills-{agent.id[-8:]}")
    repository = {"type": "github_repository", "url": url, "authorization_token": GIT_TOKEN}
    session = await client.beta.sessions.create(
        agent=agent.id, environment_id=environment.id, resources=[repository]  # type: ignore[list-item]
    )
    return session.id


async def test_repository_skills_are_listed_from_the_first_request_and_read_in_place(
    docker_sdk: anthropic.AsyncAnthropic, git_server: GitServer
) -> None:
    client = docker_sdk
    url, mount = _repository(git_server)
    session_id = await _session(client, url)

    (system,) = texts(await turn(client, session_id, "/system"))  # the session's first request

    lines = system.splitlines()
    assert f"- deploy: {DESCRIPTION} (instructions: {mount}/.claude/skills/deploy/SKILL.md)" in lines
    assert "read that SKILL.md with the read tool" in system
    skipped = (
        f"- {mount}/.claude/skills/broken/SKILL.md: the frontmatter needs a non-empty `description` "
        "(what the skill does, when to use it)"
    )
    assert skipped in lines and "- broken:" not in system
    assert "Run make ship." not in system  # the body is read when needed

    path = f"{mount}/.claude/skills/deploy/SKILL.md"
    events = await turn(client, session_id, "/tool read " + json.dumps({"file_path": path}))
    result = of_type(events, "agent.tool_result")[-1]
    assert not result.is_error and "Run make ship." in result_text(result)
    again = texts(await turn(client, session_id, "/system"))[-1]
    assert again == system  # scanned once: every request lists the same skills


async def test_without_the_read_tool_no_repository_skill_is_listed(
    docker_sdk: anthropic.AsyncAnthropic, git_server: GitServer
) -> None:
    url, _ = _repository(git_server)
    no_read = {**TOOLSET, "configs": [{"name": "read", "enabled": False}]}
    session_id = await _session(docker_sdk, url, no_read)

    (system,) = texts(await turn(docker_sdk, session_id, "/system"))

    assert ".claude/skills" not in system and "deploy" not in system


async def test_a_thread_lists_its_sessions_repository_skills(
    docker_sdk: anthropic.AsyncAnthropic, git_server: GitServer
) -> None:
    client = docker_sdk
    url, mount = _repository(git_server)
    helper = await client.beta.agents.create(name="helper", model=MODEL, tools=[TOOLSET])  # type: ignore[list-item]
    lead = await client.beta.agents.create(
        name="lead",
        model=MODEL,
        tools=[TOOLSET],  # type: ignore[list-item]
        multiagent={"type": "coordinator", "agents": [helper.id]},
    )
    environment = await client.beta.environments.create(name=f"repo-skills-{lead.id[-8:]}")
    repository = {"type": "github_repository", "url": url, "authorization_token": GIT_TOKEN}
    session = await client.beta.sessions.create(
        agent=lead.id, environment_id=environment.id, resources=[repository]  # type: ignore[list-item]
    )

    events = await turn(client, session.id, "/delegate helper /system")

    (reply,) = of_type(events, "agent.thread_message_received")
    line = f"- deploy: {DESCRIPTION} (instructions: {mount}/.claude/skills/deploy/SKILL.md)"
    assert line in result_text(reply).splitlines()
