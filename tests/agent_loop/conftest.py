"""The offline model served by a real uvicorn on a free 127.0.0.1 port (in a thread)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from app.agent_loop.offline.endpoints import OfflineState, create_offline_app

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


def body(*messages: dict[str, object], **extra: object) -> dict[str, object]:
    """A minimal Messages API request body."""
    return {"model": MODEL, "max_tokens": 1024, "messages": list(messages), **extra}


WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}
