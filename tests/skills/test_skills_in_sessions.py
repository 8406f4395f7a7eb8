"""Skills in sessions, on the real Docker engine through the strict SDK: a skill uploaded,
versioned and attached is copied into the sandbox at /workspace/skills/<name>/ (executable bits
kept), read there by the agent (the offline model) with the read tool, and listed in the model's
system prompt by name, description and path."""

from __future__ import annotations

import json

import anthropic
import pytest

from tests.files.conftest import bash
from tests.skills.factories import skill_files, skill_md, unique_name
from tests.support.factories import MODEL
from tests.support.loop import TOOLSET, of_type, result_text, texts, turn

pytestmark = pytest.mark.docker


async def _session(client: anthropic.AsyncAnthropic, skills: list[dict[str, str]]) -> str:
    agent = await client.beta.agents.create(
        name="skilled",
        model=MODEL,
        tools=[TOOLSET],  # type: ignore[list-item]
        skills=skills,  # type: ignore[arg-type]
    )
    environment = await client.beta.environments.create(name=f"skills-{agent.id[-8:]}")
    session = await client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    return session.id


async def test_an_attached_skill_is_read_by_the_agent_from_its_directory(
    docker_sdk: anthropic.AsyncAnthropic,
) -> None:
    client = docker_sdk
    name = unique_name("greeting")
    script = b'#!/bin/sh\necho "hello, $1"\n'
    first = await client.beta.skills.create(files=skill_files(name, {"scripts/greet.sh": script}))
    second_md = skill_md(name, description="Greets people warmly.", body="Run scripts/greet.sh NAME.")
    second = await client.beta.skills.versions.create(
        first.id,
        files=[
            (f"{name}/SKILL.md", second_md),
            (f"{name}/scripts/greet.sh", script),
            (f"{name}/notes.txt", b"x"),
        ],
    )
    other = unique_name("pinned")
    pinned = await client.beta.skills.create(files=skill_files(other))
    session_id = await _session(
        client,
        [
            {"type": "custom", "skill_id": first.id},  # latest: the second version
            {"type": "custom", "skill_id": pinned.id, "version": pinned.latest_version_id},
        ],
    )
    session = await client.beta.sessions.retrieve(session_id)
    assert [s.version for s in session.agent.skills] == [second.id, pinned.latest_version_id]

    path = f"/workspace/skills/{name}/SKILL.md"
    events = await turn(client, session_id, "/tool read " + json.dumps({"file_path": path}))

    result = of_type(events, "agent.tool_result")[-1]
    assert not result.is_error and "Run scripts/greet.sh NAME." in result_text(result)
    modes = f"stat -c '%A %n' {name}/scripts/greet.sh {name}/notes.txt"
    command = f"cd /workspace/skills && ls {other} && {modes} && {name}/scripts/greet.sh skills"
    out, failed = await bash(client, session_id, command)
    assert not failed
    assert out.splitlines() == [
        "SKILL.md",
        f"-rwxr-xr-x {name}/scripts/greet.sh",
        f"-rw-r--r-- {name}/notes.txt",
        "hello, skills",
    ]


async def test_the_system_prompt_lists_each_skill_by_name_description_and_path(
    docker_sdk: anthropic.AsyncAnthropic,
) -> None:
    client = docker_sdk
    name = unique_name("listed")
    skill = await client.beta.skills.create(files=skill_files(name))
    session_id = await _session(client, [{"type": "custom", "skill_id": skill.id}])

    events = await turn(client, session_id, "/system")

    (system,) = texts(events)
    description = "Greets people. Use when someone says hello."
    line = f"- {name}: {description} (instructions: /workspace/skills/{name}/SKILL.md)"
    assert line in system.splitlines()
    assert "read that SKILL.md with the read tool" in system
    # The body is read when needed, not put in the prompt.
    assert f"# {name}" not in system


async def test_a_session_without_skills_gets_no_skills_section(docker_sdk: anthropic.AsyncAnthropic) -> None:
    session_id = await _session(docker_sdk, [])
    (system,) = texts(await turn(docker_sdk, session_id, "/system"))
    assert "/workspace/skills" not in system and "/mnt/session/outputs" in system
