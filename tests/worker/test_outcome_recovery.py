"""A `mas serve` process killed with SIGKILL while the outcome grader scores an iteration, then a
fresh API process and a separate `mas worker` on the same database: the same iteration is graded
again under the same `span.outcome_evaluation_start` (no second start, nothing lost), and the
outcome goes on to its revision and its final verdict."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import anthropic
import pytest

from tests.support.loop import (
    assert_log_sane,
    fresh_database,
    idles,
    new_session,
    of_type,
    process_environment,
    sdk,
    send,
    stop_reason,
    stop_tool_servers,
    types,
    wait_for,
    wait_idle,
)
from tests.support.server import ServerProcess

SDK = anthropic.AsyncAnthropic
LEASE_SECONDS = 2
START, ONGOING, END = (
    "span.outcome_evaluation_start",
    "span.outcome_evaluation_ongoing",
    "span.outcome_evaluation_end",
)
# Each grading takes 5 s: the kill lands while the first one is in flight.
RUBRIC = "/sleep 5000\n/grade needs_revision satisfied"


pytestmark = pytest.mark.slow  # run first in parallel runs (tests/conftest.py)


@pytest.fixture
def crash_database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    directory = tmp_path_factory.mktemp(f"outcome-crash-{backend}")
    for url in fresh_database(backend, directory):
        try:
            yield url, directory
        finally:
            stop_tool_servers(directory / "sandbox")


async def test_a_worker_killed_mid_grading_recovers_without_doubled_events(
    crash_database: tuple[str, Path],
) -> None:
    url, directory = crash_database
    env = process_environment(url, directory, lease_seconds=LEASE_SECONDS)
    processes: list[ServerProcess] = []
    try:
        first = await asyncio.to_thread(ServerProcess(env).start)
        processes.append(first)
        async with sdk(first.url) as client:
            session_id = await new_session(client)
            rubric = {"type": "text", "content": RUBRIC}
            await send(
                client,
                session_id,
                {"type": "user.define_outcome", "description": "Draft it.", "rubric": rubric},
            )
            before = await wait_for(client, session_id, lambda ev: ONGOING in types(ev))
        await asyncio.to_thread(first.kill)  # SIGKILL: the lease is left to expire
        assert END not in types(before)  # the grader was cut off mid-evaluation

        api = await asyncio.to_thread(ServerProcess({**env, "MAS_EMBEDDED_WORKER": "false"}).start)
        processes.append(api)
        processes.append(ServerProcess(env, args=["worker"]).start(wait_http=False))
        async with sdk(api.url) as client:
            events = await wait_idle(client, session_id)
            evaluation = (await client.beta.sessions.retrieve(session_id)).outcome_evaluations[0]
    finally:
        for process in reversed(processes):
            await asyncio.to_thread(process.stop)

    assert [e.id for e in events[: len(before)]] == [e.id for e in before]  # nothing lost
    assert_log_sane(events)
    starts, ends = of_type(events, START), of_type(events, END)
    assert [(s.iteration, s.id) for s in starts] == [(0, of_type(before, START)[0].id), (1, starts[1].id)]
    assert [(e.iteration, e.result, e.outcome_evaluation_start_id) for e in ends] == [
        (0, "needs_revision", starts[0].id),
        (1, "satisfied", starts[1].id),
    ]
    assert types(events).count("session.status_running") == 1
    assert [stop_reason(e) for e in idles(events)] == [{"type": "end_turn"}]
    assert (evaluation.result, evaluation.iteration) == ("satisfied", 1)
