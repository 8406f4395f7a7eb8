"""A `mas serve` process killed with SIGKILL in the middle of two turns (one in a slow model
request, one in a slow tool), then a fresh API process and a separate `mas worker` on the same
database: both sessions finish, the log loses and repeats nothing, the cut-off request is closed
as failed and retried, and the cut-off tool is reported as an unknown outcome, never run twice."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.support.loop import (
    TIMEOUT,
    assert_log_sane,
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
    types,
    wait_idle,
    wait_type,
)
from tests.support.server import ServerProcess

SDK = anthropic.AsyncAnthropic
LEASE_SECONDS = 2


pytestmark = pytest.mark.slow  # run first in parallel runs (tests/conftest.py)


@dataclass
class Crash:
    client: SDK
    model_session: str
    tool_session: str
    marker: Path
    before: dict[str, list[Any]]  # each session's log as read just before the kill


def environment(database_url: str, directory: Path) -> dict[str, str]:
    return process_environment(database_url, directory, lease_seconds=LEASE_SECONDS)


def has_a_line(path: Path) -> bool:
    return path.exists() and bool(path.read_text())


async def wait_for_line(path: Path) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not await asyncio.to_thread(has_a_line, path):
        assert time.monotonic() < deadline, f"{path} was never written"
        await asyncio.sleep(0.05)


async def start_turns(client: SDK, marker: Path) -> tuple[str, str]:
    """Two sessions caught mid-step: one waiting on a slow model, one running a slow tool."""
    model_session = await new_session(client)
    tool_session = await new_session(client)
    await send(client, model_session, message("/sleep 3000\n/say answered after the crash"))
    command = f"echo ran >> {marker}; sleep 3; echo finished"
    await send(client, tool_session, message("/tool bash " + json.dumps({"command": command})))
    await wait_type(client, model_session, "span.model_request_start")
    await wait_for_line(marker)  # the tool is running now
    return model_session, tool_session


@pytest.fixture(scope="module")
def crash_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    directory = tmp_path_factory.mktemp(f"crash-{backend}")
    for url in fresh_database(backend, directory):
        try:
            yield url, directory
        finally:
            stop_tool_servers(directory / "sandbox")


@pytest.fixture(scope="module")
async def crash(crash_database: tuple[str, Path]) -> AsyncIterator[Crash]:
    url, directory = crash_database
    env = environment(url, directory)
    processes: list[ServerProcess] = []
    try:
        first = await asyncio.to_thread(ServerProcess(env).start)
        processes.append(first)
        async with sdk(first.url) as client:
            marker = directory / "tool-runs.txt"
            model_session, tool_session = await start_turns(client, marker)
            before = {s: await log(client, s) for s in (model_session, tool_session)}
        await asyncio.to_thread(first.kill)  # SIGKILL: no cleanup, the leases are left to expire

        api = await asyncio.to_thread(ServerProcess({**env, "MAS_EMBEDDED_WORKER": "false"}).start)
        processes.append(api)
        worker = ServerProcess(env, args=["worker"])
        processes.append(worker.start(wait_http=False))
        async with sdk(api.url) as client:
            yield Crash(client, model_session, tool_session, marker, before)
    finally:
        for process in reversed(processes):
            await asyncio.to_thread(process.stop)


def assert_nothing_lost(before: list[Any], after: list[Any]) -> None:
    assert [e.id for e in after[: len(before)]] == [e.id for e in before]
    assert_log_sane(after)


async def test_a_model_request_cut_off_by_a_crash_is_closed_as_failed_and_retried(crash: Crash) -> None:
    events = await wait_idle(crash.client, crash.model_session)

    starts, ends = of_type(events, "span.model_request_start"), of_type(events, "span.model_request_end")
    assert len(starts) == 2
    assert [(e.model_request_start_id, e.is_error) for e in ends] == [
        (starts[0].id, True),
        (starts[1].id, False),
    ]
    assert texts(events) == ["answered after the crash"]
    assert types(events).count("user.message") == 1
    assert types(events).count("session.status_running") == 1
    assert [stop_reason(e) for e in idles(events)] == [{"type": "end_turn"}]
    assert_nothing_lost(crash.before[crash.model_session], events)


async def test_a_tool_cut_off_by_a_crash_is_an_unknown_outcome_and_never_runs_twice(crash: Crash) -> None:
    events = await wait_idle(crash.client, crash.tool_session)

    use = of_type(events, "agent.tool_use")[0]
    results = of_type(events, "agent.tool_result")
    assert [r.tool_use_id for r in results] == [use.id]
    assert results[0].is_error and "outcome is unknown" in result_text(results[0])
    assert "outcome is unknown" in texts(events)[-1]  # the model was told
    assert [stop_reason(e) for e in idles(events)] == [{"type": "end_turn"}]
    assert_nothing_lost(crash.before[crash.tool_session], events)
    assert crash.marker.read_text().splitlines() == ["ran"]


async def test_the_recovered_sessions_take_new_turns(crash: Crash) -> None:
    for session_id in (crash.model_session, crash.tool_session):
        await wait_idle(crash.client, session_id)
        await send(crash.client, session_id, message('/tool bash {"command": "echo again"}'))
    for session_id in (crash.model_session, crash.tool_session):
        events = await wait_idle(crash.client, session_id, 2)
        assert texts(events)[-1] == "Tool results:\nagain"
        assert_log_sane(events)
    assert crash.marker.read_text().splitlines() == ["ran"]
