"""One live connection to a real MCP server on loopback: a caller hears when its request is out."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator

import pytest

from app.mcp.connection import McpConnection
from tests.support.mcp_servers import McpTestServer
from tests.support.streams import TIMEOUT


@pytest.fixture
def server() -> Iterator[McpTestServer]:
    started = McpTestServer().start()
    try:
        yield started
    finally:
        started.stats.gate.set()  # never leave a call waiting
        started.stop()


async def _until_running(server: McpTestServer) -> None:
    async with asyncio.timeout(TIMEOUT):
        while server.stats.running == 0:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_the_caller_hears_that_its_request_is_out_while_the_server_runs_it(
    server: McpTestServer,
) -> None:
    connection = McpConnection(server.url, None, call_timeout_s=TIMEOUT)
    await connection.open()
    try:
        written = asyncio.Event()
        calling = asyncio.create_task(connection.call("gated", {}, written.set))
        async with asyncio.timeout(TIMEOUT):
            await written.wait()  # the server has not answered: it waits on the gate
        await _until_running(server)
        assert not calling.done()
        server.stats.gate.set()
        result = await calling
        plain = await connection.call("add", {"a": 1, "b": 2})  # no one to tell
    finally:
        await connection.close()

    assert [b.text for b in result.content if b.type == "text"] == ["opened"]
    assert [b.text for b in plain.content if b.type == "text"] == ["3"]


async def test_parallel_callers_each_hear_once(server: McpTestServer) -> None:
    connection = McpConnection(server.url, None, call_timeout_s=TIMEOUT)
    await connection.open()
    heard: list[str] = []

    def hear(label: str) -> Callable[[], None]:
        return lambda: heard.append(label)

    try:
        calls = [
            connection.call("slow", {"seconds": 0.2, "label": label}, hear(label))
            for label in ("one", "two", "three")
        ]
        results = await asyncio.gather(*calls)
    finally:
        await connection.close()

    assert all(not r.is_error for r in results)
    assert sorted(heard) == ["one", "three", "two"]  # each once, whichever request went first
