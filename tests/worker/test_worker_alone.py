"""`mas worker` alone runs turns with the offline model: no API process is running meanwhile (the
model runs inside the worker). An API process creates the session and is stopped; the worker takes
the queued message; a new API process, without a worker of its own, reads the finished turn."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from app.db.engine import Database
from tests.support.loop import (
    fresh_database,
    idles,
    log,
    message,
    new_session,
    of_type,
    process_environment,
    result_text,
    sdk,
    send,
    stop_reason,
    stop_tool_servers,
    texts,
)
from tests.support.server import ServerProcess


@pytest.fixture
def shared_database(backend: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    for url in fresh_database(backend, tmp_path):
        try:
            yield url, tmp_path
        finally:
            stop_tool_servers(tmp_path / "sandbox")


async def _idle_count(url: str, session_id: str) -> int:
    database = Database(url)
    try:
        async with database.read() as db:
            query = sa.text(
                "SELECT count(*) FROM session_events WHERE session_id = :s AND type = 'session.status_idle'"
            )
            return int((await db.execute(query, {"s": session_id})).scalar_one())
    finally:
        await database.dispose()


async def _wait_for_idle(url: str, session_id: str) -> None:
    async with asyncio.timeout(60):
        while True:
            if await _idle_count(url, session_id) > 0:
                return
            await asyncio.sleep(0.2)


async def test_a_worker_runs_a_turn_with_no_api_process(shared_database: tuple[str, Path]) -> None:
    url, directory = shared_database
    env = process_environment(url, directory, lease_seconds=30)
    api_only = {**env, "MAS_EMBEDDED_WORKER": "false"}

    api = await asyncio.to_thread(ServerProcess(api_only).start)
    try:
        async with sdk(api.url) as client:
            session_id = await new_session(client)
            command = json.dumps({"command": "echo from the sandbox"})
            await send(client, session_id, message(f"/say on it\n/tool bash {command}"))
    finally:
        await asyncio.to_thread(api.stop)
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient() as probe:
            await probe.get(api.url + "/health", timeout=2)

    worker = await asyncio.to_thread(ServerProcess(env, args=["worker"]).start, False)
    try:
        await _wait_for_idle(url, session_id)
    finally:
        await asyncio.to_thread(worker.stop)

    reader = await asyncio.to_thread(ServerProcess(api_only).start)
    try:
        async with sdk(reader.url) as client:
            events = await log(client, session_id)
    finally:
        await asyncio.to_thread(reader.stop)
    (result,) = of_type(events, "agent.tool_result")
    assert "from the sandbox" in result_text(result) and not result.is_error
    assert texts(events)[0] == "on it" and texts(events)[-1].startswith("Tool results:")
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}
