"""Concurrent updates serialise on the agent row: each makes its own version, none is lost."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import anthropic
import pytest

from tests.agents.factories import agent_params
from tests.support.clients import strict_async_client
from tests.support.server import ServerThread


@pytest.fixture
async def sdk(mas_server: ServerThread, api_key: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    """An async SDK client closed by this test, so no socket outlives the event loop."""
    async with strict_async_client(mas_server.url, api_key) as client:
        yield client


async def test_concurrent_updates_each_make_a_version(sdk: anthropic.AsyncAnthropic) -> None:
    agent = await sdk.beta.agents.create(**agent_params())

    results = await asyncio.gather(
        *(sdk.beta.agents.update(agent.id, metadata={f"k{i}": "v"}) for i in range(8))
    )

    assert sorted(result.version for result in results) == list(range(2, 10))
    latest = await sdk.beta.agents.retrieve(agent.id)
    assert latest.version == 9 and len(latest.metadata) == 8


async def test_concurrent_preconditions_let_exactly_one_win(sdk: anthropic.AsyncAnthropic) -> None:
    agent = await sdk.beta.agents.create(**agent_params())

    results = await asyncio.gather(
        *(sdk.beta.agents.update(agent.id, version=1, system=f"s{i}") for i in range(5)),
        return_exceptions=True,
    )

    winners = [result for result in results if not isinstance(result, BaseException)]
    assert len(winners) == 1 and winners[0].version == 2
    assert all(isinstance(result, anthropic.ConflictError) for result in results if result not in winners)
