"""Memory stores mounted in real Docker sandboxes, through the strict SDK: what one session
writes under /mnt/memory/<slug>/ becomes memory versions attributed to it and is there for the
next session; read-only stores and the /mnt/memory parent refuse writes; a write based on content
changed through the API meanwhile is kept as a version, not applied, and the agent is told."""

from __future__ import annotations

import uuid
from typing import Any

import anthropic
import pytest

from tests.files.conftest import bash
from tests.support.factories import MODEL
from tests.support.loop import TOOLSET, texts, turn

pytestmark = pytest.mark.docker


async def _session(client: anthropic.AsyncAnthropic, *resources: dict[str, Any]) -> str:
    agent = await client.beta.agents.create(name="remembers", model=MODEL, tools=[TOOLSET])  # type: ignore[list-item]
    environment = await client.beta.environments.create(name=f"memory-{agent.id[-8:]}")
    session = await client.beta.sessions.create(
        agent=agent.id,
        environment_id=environment.id,
        resources=list(resources),  # type: ignore[arg-type]
    )
    return session.id


async def _store(client: anthropic.AsyncAnthropic, **memories: str) -> tuple[str, str]:
    """A store named "Team Notes <n>" holding ``memories`` (path without the slash -> content)."""
    suffix = uuid.uuid4().hex[:6]
    store = await client.beta.memory_stores.create(
        name=f"Team Notes {suffix}", description="What the team knows."
    )
    for path, content in memories.items():
        await client.beta.memory_stores.memories.create(store.id, path=f"/{path}", content=content)
    return store.id, f"/mnt/memory/team-notes-{suffix}"


async def _contents(client: anthropic.AsyncAnthropic, store_id: str) -> dict[str, str]:
    page = await client.beta.memory_stores.memories.list(store_id, view="full", limit=20)
    return {m.path: m.content for m in page.data if m.type == "memory" and m.content is not None}


async def test_what_a_session_writes_is_versioned_and_read_by_the_next(
    docker_sdk: anthropic.AsyncAnthropic,
) -> None:
    client = docker_sdk
    store_id, mount = await _store(client, **{"prefs.md": "likes tea\n"})
    first = await _session(client, {"type": "memory_store", "memory_store_id": store_id})
    session = await client.beta.sessions.retrieve(first)
    (resource,) = session.resources
    assert resource.type == "memory_store" and resource.mount_path == mount
    assert (resource.access, resource.description) == ("read_write", "What the team knows.")

    out, failed = await bash(
        client,
        first,
        f"cat {mount}/prefs.md && echo 'likes coffee' > {mount}/prefs.md && mkdir -p {mount}/projects "
        f"&& printf mas > {mount}/projects/current.md",
    )

    assert (out, failed) == ("likes tea", False)
    assert await _contents(client, store_id) == {"/prefs.md": "likes coffee\n", "/projects/current.md": "mas"}
    versions = await client.beta.memory_stores.memory_versions.list(store_id, session_id=first)
    assert sorted(v.operation for v in versions.data) == ["created", "modified"]
    assert all(v.created_by is not None and v.created_by.type == "session_actor" for v in versions.data)

    second = await _session(client, {"type": "memory_store", "memory_store_id": store_id})
    out, failed = await bash(
        client, second, f"cat {mount}/prefs.md {mount}/projects/current.md && rm {mount}/prefs.md"
    )
    assert (out, failed) == ("likes coffee\nmas", False)
    assert await _contents(client, store_id) == {"/projects/current.md": "mas"}
    deleted = await client.beta.memory_stores.memory_versions.list(
        store_id, session_id=second, operation="deleted"
    )
    assert [v.path for v in deleted.data] == ["/prefs.md"]


async def test_read_only_stores_and_the_parent_refuse_writes(docker_sdk: anthropic.AsyncAnthropic) -> None:
    client = docker_sdk
    store_id, mount = await _store(client, **{"facts.md": "water is wet"})
    session_id = await _session(
        client, {"type": "memory_store", "memory_store_id": store_id, "access": "read_only"}
    )

    out, _ = await bash(client, session_id, f"cat {mount}/facts.md; echo x > {mount}/new.md; echo rc=$?")
    assert "water is wet" in out and "Read-only file system" in out and "rc=1" in out
    out, _ = await bash(client, session_id, "mkdir /mnt/memory/elsewhere; echo rc=$?")
    assert "Read-only file system" in out and "rc=1" in out
    assert await _contents(client, store_id) == {"/facts.md": "water is wet"}


async def test_a_concurrent_api_update_is_kept_and_the_agent_told(
    docker_sdk: anthropic.AsyncAnthropic,
) -> None:
    client = docker_sdk
    store_id, mount = await _store(client, **{"notes.md": "v1"})
    session_id = await _session(client, {"type": "memory_store", "memory_store_id": store_id})
    await bash(client, session_id, f"cat {mount}/notes.md")  # placed, based on v1
    page = await client.beta.memory_stores.memories.list(store_id)
    memory = page.data[0]
    assert memory.type == "memory"
    await client.beta.memory_stores.memories.update(memory.id, memory_store_id=store_id, content="api v2")

    out, _ = await bash(
        client,
        session_id,
        f"printf 'session v2' > {mount}/notes.md; head -c 200000 /dev/zero | tr '\\0' a > {mount}/big.md",
    )

    assert "[memory sync]" in out and f"{mount}/notes.md" in out and "larger than" in out
    assert await _contents(client, store_id) == {"/notes.md": "api v2"}  # not clobbered
    kept = await client.beta.memory_stores.memory_versions.list(store_id, session_id=session_id, view="full")
    assert [v.content for v in kept.data] == ["session v2"]  # nor lost
    out, _ = await bash(client, session_id, f"cat {mount}/notes.md")
    assert out == "api v2"


async def test_the_system_prompt_describes_each_mount(docker_sdk: anthropic.AsyncAnthropic) -> None:
    client = docker_sdk
    store_id, mount = await _store(client)
    session_id = await _session(
        client,
        {
            "type": "memory_store",
            "memory_store_id": store_id,
            "access": "read_only",
            "instructions": "Cite it.",
        },
    )

    (system,) = texts(await turn(client, session_id, "/system"))

    assert f"at {mount}/ (read_only): What the team knows." in system
    assert "  Instructions: Cite it." in system.splitlines()
