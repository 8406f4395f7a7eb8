"""Model failures in a turn (the `loop_server` retries twice, 50 ms apart): transient errors are
retried through `rescheduling` and recover; exhausted retries and non-retryable errors end the
turn idle with `retries_exhausted`, and the next prompt gets a fresh retry budget."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from tests.support.loop import (
    assert_log_sane,
    idles,
    log,
    message,
    new_session,
    of_type,
    send,
    stop_reason,
    texts,
    turn,
    types,
    wait_idle,
)
from tests.support.streams import ids, read_turn

SDK = anthropic.AsyncAnthropic

FAILED_ATTEMPT = [
    "span.model_request_start",
    "span.model_request_end",
    "session.error",
    "session.status_rescheduled",
    "session.thread_status_rescheduled",
    "session.status_running",
    "session.thread_status_running",
]


def errors(events: list[Any]) -> list[tuple[str, str]]:
    return [(e.error.type, e.error.retry_status.type) for e in of_type(events, "session.error")]


async def test_an_overloaded_model_is_retried_and_the_turn_recovers(loop: SDK) -> None:
    session_id = await new_session(loop)
    async with await loop.beta.sessions.events.stream(session_id) as stream:
        await send(loop, session_id, message("/fault overloaded 2\n/say recovered"))
        streamed = await read_turn(stream)
    events = await log(loop, session_id)
    assert ids(streamed) == ids(events)

    assert types(events) == [
        "session.status_running",
        "session.thread_status_running",
        "user.message",
        *FAILED_ATTEMPT,
        *FAILED_ATTEMPT,
        "span.model_request_start",
        "agent.message",
        "span.model_request_end",
        "session.thread_status_idle",
        "session.usage",
        "session.status_idle",
    ]
    assert errors(events) == [("model_overloaded_error", "retrying")] * 2
    ends = of_type(events, "span.model_request_end")
    assert [e.is_error for e in ends] == [True, True, False]
    assert [e.model_request_start_id for e in ends] == [
        s.id for s in of_type(events, "span.model_request_start")
    ]
    assert texts(events) == ["recovered"]
    assert (await loop.beta.sessions.retrieve(session_id)).status == "idle"
    assert stop_reason(idles(events)[0]) == {"type": "end_turn"}
    assert_log_sane(events)


@pytest.mark.parametrize(
    ("fault", "error_type"),
    [
        ("rate_limited", "model_rate_limited_error"),
        ("server_error", "model_request_failed_error"),
        ("stream_overloaded", "model_overloaded_error"),
        ("cut", "model_request_failed_error"),
    ],
)
async def test_transient_failures_are_retried(loop: SDK, fault: str, error_type: str) -> None:
    session_id = await new_session(loop)
    events = await turn(loop, session_id, f"/fault {fault} 1\n/say fine")

    assert errors(events) == [(error_type, "retrying")]
    assert "session.status_rescheduled" in types(events)
    assert [e.is_error for e in of_type(events, "span.model_request_end")] == [True, False]
    assert texts(events) == ["fine"]
    assert stop_reason(idles(events)[0]) == {"type": "end_turn"}


async def test_a_stream_cut_mid_message_leaves_no_partial_message(loop: SDK) -> None:
    session_id = await new_session(loop)
    events = await turn(loop, session_id, "/fault cut 1\n/long 500")

    messages = of_type(events, "agent.message")
    assert len(messages) == 1 and len(texts(events)[0]) == 500


async def test_retries_exhausted_end_the_turn_and_the_session_takes_a_new_prompt(loop: SDK) -> None:
    session_id = await new_session(loop)
    events = await turn(loop, session_id, "/fault overloaded always")

    # Two retries (max_model_retries=2) after the first attempt, then the turn is dead.
    assert errors(events) == [("model_overloaded_error", "retrying")] * 2 + [
        ("model_overloaded_error", "exhausted")
    ]
    assert [e.is_error for e in of_type(events, "span.model_request_end")] == [True] * 3
    assert types(events)[-5:] == [
        "span.model_request_end",
        "session.error",
        "session.thread_status_idle",
        "session.usage",
        "session.status_idle",
    ]
    assert stop_reason(idles(events)[0]) == {"type": "retries_exhausted"}
    assert (await loop.beta.sessions.retrieve(session_id)).status == "idle"

    # A new prompt starts a new turn with a fresh retry budget. (The dead turn's message stays in
    # the conversation, so the offline model still reads its fault directive and fails again.)
    events = await turn(loop, session_id, "/say back again")
    second = events[[e.id for e in events].index(idles(events)[0].id) + 1 :]
    assert types(second)[:3] == ["session.status_running", "session.thread_status_running", "user.message"]
    assert errors(second) == [("model_overloaded_error", "retrying")] * 2 + [
        ("model_overloaded_error", "exhausted")
    ]
    assert stop_reason(idles(events)[-1]) == {"type": "retries_exhausted"}


async def test_a_non_retryable_error_fails_the_turn_at_once(loop: SDK) -> None:
    session_id = await new_session(loop)
    events = await turn(loop, session_id, "/fault invalid")

    assert errors(events) == [("model_request_failed_error", "exhausted")]
    assert "session.status_rescheduled" not in types(events)
    assert types(events).count("span.model_request_start") == 1
    assert of_type(events, "span.model_request_end")[0].is_error
    assert stop_reason(idles(events)[0]) == {"type": "retries_exhausted"}
    assert "Invalid request" in of_type(events, "session.error")[0].error.message


async def test_a_message_sent_during_a_failing_turn_does_not_start_another(loop: SDK) -> None:
    session_id = await new_session(loop)
    await send(loop, session_id, message("/fault overloaded always\n/sleep 300"))
    queued = (await send(loop, session_id, message("/say queued")))[0]

    events = await wait_idle(loop, session_id)
    assert stop_reason(idles(events)[0]) == {"type": "retries_exhausted"}
    # The message was consumed with the dead turn (steering it, or flushed when it died).
    assert queued.id in [e.id for e in events]
    assert len(idles(events)) == 1
