"""Environment keys: made through the API or `mas env-keys create`, stored hashed, and scoped to
their environment (a key of one environment reads nothing of another)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

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
