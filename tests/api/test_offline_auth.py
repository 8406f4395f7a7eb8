"""The offline model's `/v1/messages` needs an API key once mas listens beyond loopback
(issue 8, item 12): bound to 127.0.0.1 it is a local tool; bound to 0.0.0.0 it would otherwise be
an open Messages endpoint for the whole network."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.clients import API_KEY
from tests.support.databases import fresh_database
from tests.support.loop import new_session, process_environment, sdk, texts, turn
from tests.support.server import ServerProcess, ServerThread, free_port

REQUEST = {"model": "claude-sonnet-4-6", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}


def _post(url: str, **headers: str) -> httpx.Response:
    return httpx.post(f"{url}/v1/messages", json=REQUEST, headers=headers, timeout=30)


def test_on_loopback_no_key_is_needed(mas_server: ServerThread) -> None:
    assert _post(mas_server.url).status_code == 200
    assert _post(mas_server.url, **{"x-api-key": "anything"}).status_code == 200


@pytest.fixture
def database_file(tmp_path: Path) -> Iterator[str]:
    yield from fresh_database("sqlite", tmp_path)


async def test_beyond_loopback_a_key_is_needed_and_the_worker_has_one(
    tmp_path: Path, database_file: str
) -> None:
    for url in [database_file]:
        port = free_port()
        env = process_environment(url, tmp_path, lease_seconds=5)
        server = ServerProcess(env, args=["serve", "--host", "0.0.0.0", "--port", str(port)], port=port)
        await asyncio.to_thread(server.start)
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                refused = await http.post("/v1/messages", json=REQUEST)
                assert refused.status_code == 401
                assert refused.json()["error"]["type"] == "authentication_error"
                wrong = await http.post("/v1/messages", json=REQUEST, headers={"x-api-key": "not-a-key"})
                assert wrong.status_code == 401
                assert (await http.post("/v1/messages/count_tokens", json=REQUEST)).status_code == 401
                keyed = await http.post("/v1/messages", json=REQUEST, headers={"x-api-key": API_KEY})
                assert keyed.status_code == 200
                bearer = {"authorization": f"Bearer {API_KEY}"}
                assert (await http.post("/v1/messages", json=REQUEST, headers=bearer)).status_code == 200
            # Workers run the offline model in process: turns are unaffected by the key rule.
            async with sdk(server.url) as client:
                session_id = await new_session(client)
                events = await turn(client, session_id, "hello")
            assert texts(events)[-1] == 'Offline model reply to: "hello"'
        finally:
            server.stop()
