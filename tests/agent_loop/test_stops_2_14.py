"""The SDK 2.14 ways a turn ends: a refused response (`refusal` + `stop_details`) and a context
that stays over the threshold however often it is compacted (`compaction_limit_reached_error`)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import anthropic
import pytest

from tests.support.loop import (
    assert_log_sane,
    idles,
    loop_server,
    new_session,
    of_type,
    sdk,
    stop_reason,
    texts,
    turn,
    types,
)
from tests.support.server import ServerThread

SDK = anthropic.AsyncAnthropic


async def test_a_refused_response_ends_the_turn_with_refusal_and_its_details(loop: SDK) -> None:
    session_id = await new_session(loop)
    events = await turn(loop, session_id, "/refuse cyber")

    thread_idle = of_type(events, "session.thread_status_idle")[-1]
    idle = idles(events)[-1]
    for event in (idle, thread_idle):
        assert stop_reason(event) == {"type": "refusal"}
        assert event.stop_details is not None
        assert event.stop_details.type == "refusal" and event.stop_details.category == "cyber"
        assert event.stop_details.explanation
    assert texts(events) == ["I can't help with that."]
    assert_log_sane(events)

    # The session goes on: the next turn ends normally, without stop_details.
    events = await turn(loop, session_id, "something else")
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}
    assert idles(events)[-1].stop_details is None


async def test_a_refusal_without_a_category(loop: SDK) -> None:
    session_id = await new_session(loop)
    events = await turn(loop, session_id, "/refuse")

    details = idles(events)[-1].stop_details
    assert details is not None and details.category is None and details.explanation is None


@pytest.fixture(scope="module")
def tiny_context_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    # Every request is over a one-token threshold, the compacted one included.
    yield from loop_server(
        backend, tmp_path_factory.mktemp(f"compaction-limit-{backend}"), compaction_threshold_tokens=1
    )


@pytest.fixture(scope="module")
async def tiny_context(tiny_context_server: ServerThread) -> AsyncIterator[SDK]:
    async with sdk(tiny_context_server.url) as client:
        yield client


async def test_compacting_again_and_again_ends_with_compaction_limit_reached(tiny_context: SDK) -> None:
    # A model that always pauses its turn, so the loop keeps asking it (and keeps compacting).
    paused = {"content": [{"type": "text", "text": "still working"}], "stop_reason": "pause_turn"}
    script = {"turns": [[paused] * 10]}
    session_id = await new_session(tiny_context, system=f"#offline-script-inline: {json.dumps(script)}")
    events = await turn(tiny_context, session_id, "work on it")

    assert types(events).count("agent.thread_context_compacted") == 3
    (error,) = of_type(events, "session.error")
    assert error.error.type == "compaction_limit_reached_error"
    assert error.error.retry_status.type == "exhausted"
    assert stop_reason(idles(events)[-1]) == {"type": "retries_exhausted"}
    assert_log_sane(events)
