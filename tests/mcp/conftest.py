"""A loop server (embedded worker, offline model) and real MCP servers on loopback."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anthropic
import pytest

from tests.support.loop import loop_server as loop_server_on
from tests.support.loop import sdk
from tests.support.mcp_servers import McpTestServer
from tests.support.server import ServerThread


@pytest.fixture(scope="session")
def mcp_loop_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    yield from loop_server_on(
        backend, tmp_path_factory.mktemp(f"mcp-loop-{backend}"), mcp_call_timeout_seconds=60
    )


@pytest.fixture(scope="session")
async def loop(mcp_loop_server: ServerThread) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with sdk(mcp_loop_server.url) as client:
        yield client


@pytest.fixture(scope="session")
def calc(mcp_loop_server: ServerThread) -> Iterator[McpTestServer]:
    """An MCP server that needs no credentials (stopped after the loop server has closed its
    connections to it)."""
    server = McpTestServer().start()
    try:
        yield server
    finally:
        server.stop()
