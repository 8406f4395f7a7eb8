"""Two workers (the embedded workers of two servers) on one database, with more sessions than
either may run at once: every session finishes, each turn runs exactly once, and every tool call
runs exactly once, whichever worker claimed it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anthropic
import pytest

from tests.conftest import make_settings
from tests.support.loop import (
    assert_log_sane,
    fresh_database,
    idles,
    message,
    new_session,
    of_type,
    sdk,
    send,
    stop_reason,
    stop_tool_servers,
    texts,
    types,
    wait_idle,
)
from tests.support.server import ServerThread

SDK = anthropic.AsyncAnthropic
SESSIONS = 12


@pytest.fixture(scope="module")
def two_servers(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerThread, Path]]:
    directory = tmp_path_factory.mktemp(f"claims-{backend}")
    for url in fresh_database(backend, directory):
        settings = make_settings(
            url,
            sandbox_state_dir=directory / "sandbox",
            worker_concurrency=3,
            worker_poll_seconds=0.2,
            # Long enough that a busy test process never lets a lease lapse: this test is about
            # exclusive claims, not expiry (tests/worker/test_crash_recovery.py covers that).
            worker_lease_seconds=20.0,
        )
        servers = [ServerThread(settings).start(), ServerThread(settings).start()]
        try:
            yield servers[0], directory
        finally:
            for server in servers:
                server.stop()
            stop_tool_servers(directory / "sandbox")


@pytest.fixture(scope="module")
async def client(two_servers: tuple[ServerThread, Path]) -> AsyncIterator[SDK]:
    async with sdk(two_servers[0].url) as sdk_client:
        yield sdk_client


async def test_many_sessions_on_two_workers_each_run_every_step_once(
    client: SDK, two_servers: tuple[ServerThread, Path]
) -> None:
    runs = two_servers[1] / "runs.txt"
    session_ids = await asyncio.gather(*(new_session(client) for _ in range(SESSIONS)))
    for number, session_id in enumerate(session_ids):
        command = f"echo {number} >> {runs}; sleep 0.2; echo done-{number}"
        await send(client, session_id, message("/tool bash " + json.dumps({"command": command})))

    logs = await asyncio.gather(*(wait_idle(client, s) for s in session_ids))
    for number, events in enumerate(logs):
        assert_log_sane(events)
        assert types(events).count("session.status_running") == 1
        assert types(events).count("span.model_request_start") == 2
        assert len(of_type(events, "agent.tool_result")) == 1
        assert texts(events)[-1] == f"Tool results:\ndone-{number}"
        assert stop_reason(idles(events)[0]) == {"type": "end_turn"}
    lines = (await asyncio.to_thread(runs.read_text)).split()
    assert sorted(lines, key=int) == [str(n) for n in range(SESSIONS)]
