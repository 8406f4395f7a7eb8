"""A second test server with no worker, whose turns the tests produce themselves.

Import these fixtures into a directory's conftest. The server streams with a short heartbeat and
a short safety-net poll so the tests about them finish quickly; `producer` plays the worker in its
process (see `tests.support.turns`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import anthropic
import httpx
import pytest

from tests.conftest import _database_url, make_settings
from tests.support.clients import API_KEY, strict_async_client, strict_client
from tests.support.server import ServerThread
from tests.support.turns import InProcessWorker

HEADERS = {
    "x-api-key": API_KEY,
    "anthropic-version": "2023-06-01",
    "anthropic-beta": "managed-agents-2026-04-01",
}


@pytest.fixture(scope="session")
def manual_database_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Its own database: the worker of another test server must never take these sessions."""
    yield from _database_url(backend, tmp_path_factory.mktemp(f"manual-db-{backend}"))


@pytest.fixture(scope="session")
def manual_server(manual_database_url: str) -> Iterator[ServerThread]:
    settings = make_settings(
        manual_database_url, embedded_worker=False, stream_heartbeat_seconds=0.5, stream_poll_seconds=1.0
    )
    server = ServerThread(settings).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def producer(manual_server: ServerThread) -> InProcessWorker:
    return InProcessWorker(manual_server)


@pytest.fixture(scope="session")
def manual_client(manual_server: ServerThread) -> Iterator[anthropic.Anthropic]:
    with strict_client(manual_server.url, API_KEY) as sdk:
        yield sdk


@pytest.fixture(scope="session")
async def manual_async_client(manual_server: ServerThread) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with strict_async_client(manual_server.url, API_KEY) as sdk:
        yield sdk


@pytest.fixture
async def manual_http(manual_server: ServerThread) -> AsyncIterator[httpx.AsyncClient]:
    limits = httpx.Limits(max_connections=300, max_keepalive_connections=300)
    async with httpx.AsyncClient(
        base_url=manual_server.url, headers=HEADERS, timeout=30, limits=limits
    ) as session:
        yield session
