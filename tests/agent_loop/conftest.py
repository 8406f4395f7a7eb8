"""The offline model served by a real uvicorn on a free 127.0.0.1 port (in a thread)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import anthropic
import pytest
import uvicorn

from app.offline.endpoints import OfflineState, create_offline_app
from app.shared.content import ToolDefinition
from tests.support.loop import loop_server as loop_server_on
from tests.support.loop import sdk
from tests.support.server import ServerThread

MODEL = "claude-sonnet-5"


@dataclass
class OfflineServer:
    url: str
    state: OfflineState


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def offline_server() -> Iterator[OfflineServer]:
    app = create_offline_app()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, name=f"offline-model-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("offline model server did not start")
        time.sleep(0.02)
    try:
        yield OfflineServer(url=f"http://127.0.0.1:{port}", state=app.state.offline)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def user(text: str) -> dict[str, object]:
    return {"role": "user", "content": text}


def body(*messages: dict[str, object], **extra: object) -> dict[str, Any]:
    """A minimal Messages API request body (raw JSON, as the offline engine takes it)."""
    return {"model": MODEL, "max_tokens": 1024, "messages": list(messages), **extra}


WEATHER_TOOL: ToolDefinition = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


# --- the real agent loop: a server with the embedded worker, on a database of its own ---------


@pytest.fixture(scope="session")
def loop_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    """Fast retries (2 at most, 50 ms apart) so the error paths finish quickly; outcome
    heartbeats every 200 ms so a test sees several while a grader works."""
    yield from loop_server_on(
        backend,
        tmp_path_factory.mktemp(f"loop-{backend}"),
        retry_base_seconds=0.05,
        max_model_retries=2,
        outcome_heartbeat_seconds=0.2,
    )


@pytest.fixture(scope="session")
async def loop(loop_server: ServerThread) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with sdk(loop_server.url) as client:
        yield client
