"""Stopping a worker gracefully (SIGTERM to `mas serve`): the step in progress finishes, the lease
is handed back at once, and another process resumes the session without waiting for the lease to
expire (here it never would within the test's bounded waits: leases last 300 s)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.loop import (
    fresh_database,
    idles,
    message,
    new_session,
    of_type,
    process_environment,
    result_text,
    sdk,
    send,
    stop_reason,
    stop_tool_servers,
    wait_idle,
)
from tests.support.server import ServerProcess
from tests.worker.test_crash_recovery import wait_for_line


@pytest.fixture
def shared_database(backend: str, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    for url in fresh_database(backend, tmp_path):
        try:
            yield url, tmp_path
        finally:
            stop_tool_servers(tmp_path / "sandbox")


async def test_a_stopped_worker_hands_its_sessions_over(shared_database: tuple[str, Path]) -> None:
    url, directory = shared_database
    env = process_environment(url, directory, lease_seconds=300)
    marker = directory / "runs.txt"
    first = await asyncio.to_thread(ServerProcess(env).start)
    second = None
    try:
        async with sdk(first.url) as client:
            session_id = await new_session(client)
            command = f"echo ran >> {marker}; sleep 2; echo finished"
            await send(client, session_id, message("/tool bash " + json.dumps({"command": command})))
            await wait_for_line(marker)  # the tool is running when the stop begins
        await asyncio.to_thread(first.stop)  # SIGTERM: graceful

        second = await asyncio.to_thread(ServerProcess(env).start)
        async with sdk(second.url) as client:
            events = await wait_idle(client, session_id)
        (result,) = of_type(events, "agent.tool_result")
        assert "finished" in result_text(result) and not result.is_error  # the step completed
        assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}
        assert marker.read_text().count("ran") == 1
    finally:
        for process in (first, second):
            if process is not None:
                await asyncio.to_thread(process.stop)
