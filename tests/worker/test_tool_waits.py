"""Long tool calls against a worker with two slots (local sandboxes, both databases): a session
waiting on its tools lends its slot, so other sessions still run; interrupts kill the calls."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anthropic
import pytest

from tests.support.hardening import interrupt_kills_a_sleeping_tool, long_tools_do_not_starve_other_sessions
from tests.support.loop import loop_server, sdk
from tests.support.server import ServerThread

SLOTS = 2


@pytest.fixture(scope="module")
def server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    yield from loop_server(
        backend, tmp_path_factory.mktemp(f"tool-waits-{backend}"), worker_concurrency=SLOTS
    )


@pytest.fixture
async def client(server: ServerThread) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with sdk(server.url) as client:
        yield client


async def test_long_tool_calls_do_not_starve_other_sessions(client: anthropic.AsyncAnthropic) -> None:
    await long_tools_do_not_starve_other_sessions(client, SLOTS)


async def test_an_interrupt_kills_a_sleeping_tool(client: anthropic.AsyncAnthropic) -> None:
    await interrupt_kills_a_sleeping_tool(client)
