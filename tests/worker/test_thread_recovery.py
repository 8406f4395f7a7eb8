"""A `mas serve` process killed with SIGKILL while a coordinator's thread runs a slow bash call,
then a fresh API process and a separate `mas worker` on the same database: the thread recovers
like a session (the cut-off call is an unknown outcome, never run twice), replies to its
coordinator, and the session goes idle; neither log loses or repeats an event."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.support.loop import (
    assert_log_sane,
    bash,
    children,
    coordinated_session,
    fresh_database,
    log,
    message,
    of_type,
    result_text,
    sdk,
    send,
    stop_tool_servers,
    thread_log,
    types,
    wait_for,
)
from tests.support.server import ServerProcess
from tests.worker.test_crash_recovery import environment, wait_for_line

SDK = anthropic.AsyncAnthropic
# Three `mas` processes start in the fixture (each import took up to a minute under load).
pytestmark = [pytest.mark.timeout(900), pytest.mark.slow]


@dataclass
class ThreadCrash:
    client: SDK
    session_id: str
    thread_id: str
    marker: Path
    before: dict[str, list[Any]]  # the session's and the thread's logs just before the kill


@pytest.fixture(scope="module")
def thread_crash_database(
    backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Path]]:
    directory = tmp_path_factory.mktemp(f"thread-crash-{backend}")
    for url in fresh_database(backend, directory):
        try:
            yield url, directory
        finally:
            stop_tool_servers(directory / "sandbox")


@pytest.fixture(scope="module")
async def thread_crash(thread_crash_database: tuple[str, Path]) -> AsyncIterator[ThreadCrash]:
    url, directory = thread_crash_database
    env = environment(url, directory)
    processes: list[ServerProcess] = []
    try:
        first = await asyncio.to_thread(ServerProcess(env).start)
        processes.append(first)
        marker = directory / "thread-tool-runs.txt"
        async with sdk(first.url) as client:
            session_id, _ = await coordinated_session(client, "slow")
            task = bash(f"echo ran >> {marker}; sleep 3; echo finished")
            await send(client, session_id, message(f"/delegate slow {task}"))
            await wait_for_line(marker)  # the thread's tool is running now
            (thread,) = await children(client, session_id)
            before = {
                session_id: await log(client, session_id),
                thread.id: await thread_log(client, session_id, thread.id),
            }
        await asyncio.to_thread(first.kill)  # SIGKILL: no cleanup, the leases are left to expire

        api = await asyncio.to_thread(ServerProcess({**env, "MAS_EMBEDDED_WORKER": "false"}).start)
        processes.append(api)
        worker = ServerProcess(env, args=["worker"])
        processes.append(worker.start(wait_http=False))
        async with sdk(api.url) as client:
            yield ThreadCrash(client, session_id, thread.id, marker, before)
    finally:
        for process in reversed(processes):
            await asyncio.to_thread(process.stop)


def assert_nothing_lost(before: list[Any], after: list[Any]) -> None:
    assert [e.id for e in after[: len(before)]] == [e.id for e in before]
    assert_log_sane(after)


async def test_a_thread_cut_off_by_a_crash_recovers_and_replies(thread_crash: ThreadCrash) -> None:
    crash = thread_crash
    events = await wait_for(crash.client, crash.session_id, lambda e: "session.status_idle" in types(e))
    own = await thread_log(crash.client, crash.session_id, crash.thread_id)

    use = of_type(own, "agent.tool_use")[0]
    results = of_type(own, "agent.tool_result")
    assert [r.tool_use_id for r in results] == [use.id]
    assert results[0].is_error and "outcome is unknown" in result_text(results[0])
    assert types(own)[-2:] == ["agent.thread_message_sent", "session.thread_status_idle"]
    assert_nothing_lost(crash.before[crash.thread_id], own)

    replies = of_type(events, "agent.thread_message_received")
    assert [r.from_session_thread_id for r in replies] == [crash.thread_id]
    assert "outcome is unknown" in result_text(replies[0])
    assert types(events).count("session.status_idle") == 1
    assert_nothing_lost(crash.before[crash.session_id], events)
    assert crash.marker.read_text().splitlines() == ["ran"]
    thread = await crash.client.beta.sessions.threads.retrieve(crash.thread_id, session_id=crash.session_id)
    assert thread.status == "idle"
