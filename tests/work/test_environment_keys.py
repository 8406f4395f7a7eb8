"""Environment keys: made through the API or `mas env-keys create`, stored hashed, and scoped to
their environment (a key of one environment reads nothing of another)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Awaitable

import anthropic
import httpx
import pytest

from tests.support.clients import bearer_async_client
from tests.support.server import ServerThread
from tests.work.conftest import HEADERS, SelfHosted, self_hosted
from tests.work.test_work_queue import claim, sessions_token

SDK = anthropic.AsyncAnthropic


async def test_keys_are_shown_once_listed_by_hint_and_revocable(
    mas_server: ServerThread, env: SelfHosted
) -> None:
    async with httpx.AsyncClient(base_url=mas_server.url, headers=HEADERS, timeout=30) as http:
        listed = (await http.get(f"/v1/environments/{env.environment_id}/keys")).json()["data"]
        assert len(listed) == 1 and listed[0]["key"] is None
        assert listed[0]["hint"].startswith("sk-mas-env-") and env.key not in listed[0]["hint"]
        revoked = await http.post(f"/v1/environments/{env.environment_id}/keys/{listed[0]['id']}/revoke")
        assert revoked.json()["revoked_at"] is not None

    async def refused() -> bool:
        try:
            await env.worker.beta.environments.work.stats(env.environment_id)
        except anthropic.AuthenticationError:
            return True
        return False

    for _ in range(40):  # validated keys are cached for 5 s
        if await refused():
            return
        await asyncio.sleep(0.25)
    pytest.fail("a revoked environment key kept working")


async def test_only_self_hosted_environments_have_keys(mas_server: ServerThread, async_client: SDK) -> None:
    cloud = await async_client.beta.environments.create(name="cloud")
    async with httpx.AsyncClient(base_url=mas_server.url, headers=HEADERS, timeout=30) as http:
        response = await http.post(f"/v1/environments/{cloud.id}/keys", json={})
        missing = await http.post("/v1/environments/env_missing/keys", json={})
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    assert missing.status_code == 404


async def test_the_cli_prints_a_working_key_on_its_last_line(
    mas_server: ServerThread, env: SelfHosted, database_url: str
) -> None:
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app", "env-keys", "create", env.environment_id, "--name", "ci"],
        env={**os.environ, "MAS_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    key = result.stdout.strip().splitlines()[-1]
    assert key.startswith("sk-mas-env-")
    listed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app", "env-keys", "list", env.environment_id, "--json"],
        env={**os.environ, "MAS_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    ci_keys = [k for k in json.loads(listed.stdout) if k["name"] == "ci"]
    assert [(k["environment_id"], k["state"], k["revoked_at"]) for k in ci_keys] == [
        (env.environment_id, "active", None)
    ]
    assert key not in listed.stdout and key.endswith(ci_keys[0]["hint"][-4:])
    async with bearer_async_client(mas_server.url, key) as worker:
        assert (await worker.beta.environments.work.stats(env.environment_id)).type == "work_queue_stats"
    failed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "app", "env-keys", "create", "env_missing"],
        env={**os.environ, "MAS_DATABASE_URL": database_url},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 1 and "not found" in failed.stderr


async def test_a_key_reads_nothing_of_another_environment(
    mas_server: ServerThread, env: SelfHosted, async_client: SDK
) -> None:
    other = await self_hosted(mas_server.url, async_client)
    foreign_session = await other.session(async_client)
    own_session = await env.session(async_client)
    work = env.worker.beta.environments.work
    try:
        with pytest.raises(anthropic.NotFoundError):
            await work.poll(other.environment_id)
        with pytest.raises(anthropic.NotFoundError):
            await work.stats(other.environment_id)
        with pytest.raises(anthropic.NotFoundError):
            await env.worker.beta.sessions.retrieve(foreign_session)
        with pytest.raises(anthropic.NotFoundError):
            await env.worker.beta.sessions.events.list(foreign_session)
        foreign_item = await claim(other)
        with pytest.raises(anthropic.NotFoundError):
            await work.retrieve(foreign_item.id, environment_id=env.environment_id)
        with pytest.raises(anthropic.PermissionDeniedError):
            await env.worker.beta.agents.list()
        with pytest.raises(anthropic.PermissionDeniedError):
            await env.worker.beta.sessions.create(agent=env.agent_id, environment_id=env.environment_id)
        assert (await env.worker.beta.sessions.retrieve(own_session)).id == own_session
    finally:
        await other.worker.close()
    async with bearer_async_client(mas_server.url, "sk-mas-env-not-a-key") as stranger:
        with pytest.raises(anthropic.AuthenticationError):
            await stranger.beta.environments.work.stats(env.environment_id)


async def test_a_sessions_token_reaches_its_own_session_and_work_item_only(
    mas_server: ServerThread, env: SelfHosted, async_client: SDK
) -> None:
    mine = await env.session(async_client)
    neighbour = await env.session(async_client)  # same environment, another session
    item = await claim(env)
    assert item.data.id == mine
    async with bearer_async_client(mas_server.url, sessions_token(item.secret)) as token:
        assert (await token.beta.sessions.retrieve(mine)).id == mine
        with pytest.raises(anthropic.NotFoundError):
            await token.beta.sessions.retrieve(neighbour)
        with pytest.raises(anthropic.PermissionDeniedError):
            await token.beta.environments.work.poll(env.environment_id)
        with pytest.raises(anthropic.PermissionDeniedError):
            await token.beta.environments.work.ack(item.id, environment_id=env.environment_id)
        await env.worker.beta.environments.work.ack(item.id, environment_id=env.environment_id)
        beat = await token.beta.environments.work.heartbeat(
            item.id, environment_id=env.environment_id, expected_last_heartbeat="NO_HEARTBEAT"
        )
        assert beat.state == "active"


async def test_a_sessions_token_reaches_the_memory_stores_of_its_session_only(
    mas_server: ServerThread, env: SelfHosted, async_client: SDK
) -> None:
    """The SDK worker's memory sync rides the sessions token: the stores attached to its session
    (writes only where attached read_write, attributed to the session), nothing else."""
    writable = await async_client.beta.memory_stores.create(name="writable")
    readable = await async_client.beta.memory_stores.create(name="readable")
    elsewhere = await async_client.beta.memory_stores.create(name="elsewhere")
    kept = await async_client.beta.memory_stores.memories.create(readable.id, path="/kept.md", content="a")
    foreign = await async_client.beta.memory_stores.memories.create(elsewhere.id, path="/x.md", content="b")
    mine = await env.session(
        async_client,
        resources=[
            {"type": "memory_store", "memory_store_id": writable.id},
            {"type": "memory_store", "memory_store_id": readable.id, "access": "read_only"},
        ],
    )
    neighbour = await env.session(
        async_client, resources=[{"type": "memory_store", "memory_store_id": elsewhere.id}]
    )
    first, second = await claim(env), await claim(env)
    assert (first.data.id, second.data.id) == (mine, neighbour)
    async with (
        bearer_async_client(mas_server.url, sessions_token(first.secret)) as token,
        bearer_async_client(mas_server.url, sessions_token(second.secret)) as other_token,
    ):
        memories = token.beta.memory_stores.memories
        made = await memories.create(writable.id, path="/new.md", content="written by the worker")
        changed = await memories.update(made.id, memory_store_id=writable.id, content="changed")
        assert (await memories.retrieve(made.id, memory_store_id=writable.id)).content == "changed"
        assert [m.id async for m in memories.list(readable.id) if m.type == "memory"] == [kept.id]
        assert (await memories.retrieve(kept.id, memory_store_id=readable.id)).content == "a"
        with pytest.raises(anthropic.PermissionDeniedError):
            await memories.create(readable.id, path="/new.md", content="no")
        with pytest.raises(anthropic.PermissionDeniedError):
            await memories.update(kept.id, memory_store_id=readable.id, content="no")
        with pytest.raises(anthropic.PermissionDeniedError):
            await memories.delete(kept.id, memory_store_id=readable.id)
        calls: list[Awaitable[object]] = [
            memories.list(elsewhere.id),
            memories.retrieve(foreign.id, memory_store_id=elsewhere.id),
            memories.create(elsewhere.id, path="/y.md", content="no"),
            memories.delete(foreign.id, memory_store_id=elsewhere.id),
            other_token.beta.memory_stores.memories.retrieve(made.id, memory_store_id=writable.id),
        ]
        for call in calls:
            with pytest.raises(anthropic.NotFoundError):
                await call
        with pytest.raises(anthropic.PermissionDeniedError):  # only the memories routes
            await token.beta.memory_stores.retrieve(writable.id)
        with pytest.raises(anthropic.PermissionDeniedError):
            await token.beta.memory_stores.memory_versions.list(writable.id)
        await memories.delete(made.id, memory_store_id=writable.id)
    with pytest.raises(anthropic.PermissionDeniedError):  # the environment key has no memory access
        await env.worker.beta.memory_stores.memories.list(writable.id)
    async with bearer_async_client(mas_server.url, "sk-mas-work-not-a-token") as stranger:
        with pytest.raises(anthropic.AuthenticationError):
            await stranger.beta.memory_stores.memories.list(writable.id)
    versions = [v async for v in async_client.beta.memory_stores.memory_versions.list(writable.id)]
    assert {v.operation for v in versions} == {"created", "modified", "deleted"}
    for version in versions:
        assert version.created_by is not None and version.created_by.type == "session_actor"
        assert version.created_by.session_id == mine
    assert changed.content_sha256 != made.content_sha256
    still = [m async for m in async_client.beta.memory_stores.memories.list(elsewhere.id)]
    assert [m.id for m in still if m.type == "memory"] == [foreign.id]
