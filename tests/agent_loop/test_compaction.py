"""Compaction: once a request comes near the (here tiny) context threshold, the history is replaced
by a summary (`agent.thread_context_compacted`) and the next request works from that summary."""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def compacting_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerThread]:
    directory = tmp_path_factory.mktemp(f"compact-{backend}")
    yield from loop_server(
        directory=directory, backend=backend, compaction_threshold_tokens=200, retry_base_seconds=0.05
    )


@pytest.fixture(scope="module")
async def compacting(compacting_server: ServerThread) -> AsyncIterator[SDK]:
    async with sdk(compacting_server.url) as client:
        yield client


async def test_a_long_history_is_compacted_before_the_next_request(compacting: SDK) -> None:
    session_id = await new_session(compacting)
    first = await turn(compacting, session_id, "/long 2000")
    assert "agent.thread_context_compacted" not in types(first)

    events = await turn(compacting, session_id, "What did you write?")
    kinds = types(events)
    compacted = kinds.index("agent.thread_context_compacted")
    assert kinds[compacted - 1] == "user.message"
    assert kinds[compacted + 1 :] == [
        "span.model_request_start",
        "agent.message",
        "span.model_request_end",
        "session.thread_status_idle",
        "session.usage",
        "session.status_idle",
    ]
    # The event carries nothing but its id and type (the summary stays inside the harness).
    event = of_type(events, "agent.thread_context_compacted")[0]
    assert set(event.model_dump(exclude_none=True)) == {"id", "type", "processed_at"}
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}
    assert_log_sane(events)


async def test_the_request_after_compaction_works_from_the_summary_and_the_new_message(
    compacting: SDK,
) -> None:
    session_id = await new_session(compacting)
    await turn(compacting, session_id, "/long 2000")
    events = await turn(compacting, session_id, "/say answered after compaction")

    answer = texts(events)[-1]
    # The offline model quotes its input by default; /say proves the new message reached it whole.
    assert answer == "answered after compaction"
    third = await turn(compacting, session_id, "what do you remember?")
    remembered = texts(third)[-1]
    assert "This conversation was compacted" in remembered
    assert remembered.endswith('\nwhat do you remember?"')


async def test_a_compaction_in_the_middle_of_a_turn_keeps_the_tool_results_in_the_summary(
    compacting: SDK,
) -> None:
    session_id = await new_session(compacting)
    events = await turn(compacting, session_id, '/tool bash {"command": "echo from-the-tool"}')

    kinds = types(events)
    assert kinds.index("agent.tool_result") < kinds.index("agent.thread_context_compacted")
    assert "[tool_result from-the-tool]" in texts(events)[-1]
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}


async def test_a_failing_compaction_request_is_reported_like_a_failing_model_request(compacting: SDK) -> None:
    session_id = await new_session(compacting)
    await turn(compacting, session_id, "/long 2000")
    events = await turn(compacting, session_id, "/fault invalid")

    assert [e.error.retry_status.type for e in of_type(events, "session.error")] == ["exhausted"]
    assert stop_reason(idles(events)[-1]) == {"type": "retries_exhausted"}


async def test_a_compaction_request_that_fails_transiently_is_retried(compacting: SDK) -> None:
    session_id = await new_session(compacting)
    await turn(compacting, session_id, "/long 2000")
    # The fault hits the summary request first, then the request made from the summary.
    events = await turn(compacting, session_id, "/fault overloaded 1")

    assert [e.error.retry_status.type for e in of_type(events, "session.error")] == ["retrying", "retrying"]
    assert types(events).count("agent.thread_context_compacted") == 1
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}


async def test_the_summary_request_counts_in_the_session_usage(compacting: SDK) -> None:
    session_id = await new_session(compacting)
    await turn(compacting, session_id, "/long 2000")
    events = await turn(compacting, session_id, "/say short")

    spans = [e.model_usage for e in of_type(events, "span.model_request_end")]
    usage = (await compacting.beta.sessions.retrieve(session_id)).usage
    assert usage.output_tokens is not None
    assert usage.output_tokens > sum(u.output_tokens for u in spans)
    assert of_type(events, "session.usage")[-1].usage.output_tokens == usage.output_tokens
