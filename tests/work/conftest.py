"""Self-hosted environments, their keys and queued sessions, made through the public API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import anthropic
import httpx
import pytest

from tests.support.clients import API_KEY, bearer_async_client
from tests.support.factories import MODEL
from tests.support.server import ServerThread

HEADERS = {"x-api-key": API_KEY, "anthropic-beta": "managed-agents-2026-04-01"}


async def create_key(base_url: str, environment_id: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, headers=HEADERS, timeout=30) as http:
        response = await http.post(f"/v1/environments/{environment_id}/keys", json={"name": "worker"})
    assert response.status_code == 200, response.text
    key: str = response.json()["key"]
    return key


@dataclass
class SelfHosted:
    environment_id: str
    key: str
    agent_id: str
    worker: anthropic.AsyncAnthropic  # authenticated with the environment key

    async def session(self, admin: anthropic.AsyncAnthropic, **params: object) -> str:
        session = await admin.beta.sessions.create(
            agent=self.agent_id,
            environment_id=self.environment_id,
            **params,  # type: ignore[arg-type]
        )
        return session.id


async def self_hosted(server_url: str, admin: anthropic.AsyncAnthropic, *tools: Any) -> SelfHosted:
    environment = await admin.beta.environments.create(name="workers", config={"type": "self_hosted"})
    agent = await admin.beta.agents.create(
        name="self-hosted",
        model=MODEL,
        tools=list(tools) or [{"type": "agent_toolset_20260401"}],
    )
    key = await create_key(server_url, environment.id)
    return SelfHosted(environment.id, key, agent.id, bearer_async_client(server_url, key))


@pytest.fixture
async def env(mas_server: ServerThread, async_client: anthropic.AsyncAnthropic) -> AsyncIterator[SelfHosted]:
    setup = await self_hosted(mas_server.url, async_client)
    try:
        yield setup
    finally:
        await setup.worker.close()
