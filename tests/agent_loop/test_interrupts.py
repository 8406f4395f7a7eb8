"""`user.interrupt` in each place a turn can be: during a model request (stops it at once), during
a tool (kills it and everything it started), idle on requires_action (closes the pending calls)
and idle (a no-op).

The log's safety-net poll is pushed out of reach here: a running step must hear of the interrupt
from the notifier's announcement (see `app/agent_loop/interrupts.py`)."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest

from app.events import notifier
from tests.support.loop import (
    always_ask,
    assert_log_sane,
    idles,
    log,
    message,
    new_session,
    of_type,
    result_text,
    send,
    stop_reason,
    texts,
    toolset,
    types,
    wait_idle,
    wait_type,
)

SDK = anthropic.AsyncAnthropic
INTERRUPT = {"type": "user.interrupt"}
# Far longer than any wait of these tests: only an interrupt can end such a request in time.
ENDLESS_MODEL = "/sleep 600000\n/long 400"


@pytest.fixture(autouse=True)
def announcements_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notifier, "INTERRUPT_SAFETY_POLL_SECONDS", 3600.0)


def tail_after(events: list[Any], event_id: str) -> list[str]:
    at = [e.id for e in events].index(event_id)
    return types(events)[at:]


async def test_an_interrupt_stops_a_model_request_at_once(loop: SDK) -> None:
    session_id = await new_session(loop)
    await send(loop, session_id, message(ENDLESS_MODEL))
    await wait_type(loop, session_id, "span.model_request_start")
    interrupt = (await send(loop, session_id, INTERRUPT))[0]
    assert interrupt.processed_at is None  # applied by the agent, not on receipt

    events = await wait_idle(loop, session_id)
    start = of_type(events, "span.model_request_start")[0]
    end = of_type(events, "span.model_request_end")[0]
    assert end.model_request_start_id == start.id
    assert "agent.message" not in types(events)
    assert tail_after(events, end.id) == [
        "span.model_request_end",
        "user.interrupt",
        "session.thread_status_idle",
        "session.usage",
        "session.status_idle",
    ]
    assert stop_reason(idles(events)[0]) == {"type": "end_turn"}
    assert (await loop.beta.sessions.retrieve(session_id)).status == "idle"


async def test_an_interrupt_during_a_tool_kills_it_then_ends_the_turn(loop: SDK) -> None:
    session_id = await new_session(loop)
    await send(loop, session_id, message('/tool bash {"command": "sleep 600; echo finished"}'))
    await wait_type(loop, session_id, "agent.tool_use")
    await send(loop, session_id, INTERRUPT)

    events = await wait_idle(loop, session_id)
    result = of_type(events, "agent.tool_result")[0]
    assert result.is_error and "interrupted" in result_text(result)
    assert "finished" not in result_text(result)
    assert tail_after(events, result.id) == [
        "agent.tool_result",
        "user.interrupt",
        "session.thread_status_idle",
        "session.usage",
        "session.status_idle",
    ]
    assert types(events).count("span.model_request_start") == 1  # the model was not asked again
    assert stop_reason(idles(events)[0]) == {"type": "end_turn"}
    await loop.beta.sessions.archive(session_id)  # idle: it can be archived (and deleted)


async def test_an_interrupt_sent_with_a_message_ends_the_turn_and_the_message_starts_the_next(
    loop: SDK,
) -> None:
    session_id = await new_session(loop)
    await send(loop, session_id, message('/tool bash {"command": "sleep 1; echo finished"}'))
    await wait_type(loop, session_id, "agent.tool_use")
    await send(loop, session_id, INTERRUPT, message("/say fresh start"))

    events = await wait_idle(loop, session_id, 2)
    assert [stop_reason(e) for e in idles(events)] == [{"type": "end_turn"}] * 2
    assert texts(events) == ["fresh start"]
    interrupt = of_type(events, "user.interrupt")[0]
    assert tail_after(events, interrupt.id)[:7] == [
        "user.interrupt",
        "session.thread_status_idle",
        "session.usage",
        "session.status_idle",
        "session.status_running",
        "session.thread_status_running",
        "user.message",
    ]
    assert_log_sane(events)


async def test_an_interrupt_while_waiting_on_confirmations_closes_the_pending_calls(loop: SDK) -> None:
    session_id = await new_session(loop, toolset(always_ask("bash")))
    await send(
        loop, session_id, message('/tool bash {"command": "echo a"}\n/tool bash {"command": "echo b"}')
    )
    events = await wait_idle(loop, session_id)
    uses = of_type(events, "agent.tool_use")
    assert stop_reason(idles(events)[0])["type"] == "requires_action"

    await send(loop, session_id, INTERRUPT)
    events = await wait_idle(loop, session_id, 2)
    results = of_type(events, "agent.tool_result")
    assert [r.tool_use_id for r in results] == [u.id for u in uses]
    assert all(r.is_error and "interrupted" in result_text(r) for r in results)
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}
    assert types(events).count("span.model_request_start") == 1  # without sampling the model

    # The session is usable again: nothing is pending any more.
    await send(loop, session_id, message("/say next"))
    events = await wait_idle(loop, session_id, 3)
    assert texts(events)[-1] == "next"


async def test_an_interrupt_of_an_idle_session_is_a_no_op(loop: SDK) -> None:
    session_id = await new_session(loop)
    await send(loop, session_id, message("/say one"))
    await wait_idle(loop, session_id)
    await send(loop, session_id, INTERRUPT)
    events = await wait_type(loop, session_id, "user.interrupt")

    assert len(idles(events)) == 1 and types(events)[-1] == "user.interrupt"
    await send(loop, session_id, message("/say two"))
    events = await wait_idle(loop, session_id, 2)
    assert texts(events) == ["one", "two"]
    assert len(idles(await log(loop, session_id))) == 2


async def test_an_interrupt_during_a_retry_backoff_ends_the_turn_without_waiting(loop: SDK) -> None:
    session_id = await new_session(loop)
    # The server asks for a 600 s pause before the retry: only the interrupt ends this turn in time.
    await send(loop, session_id, message("/fault rate_limited always 600"))
    await wait_type(loop, session_id, "session.status_rescheduled")
    assert (await loop.beta.sessions.retrieve(session_id)).status == "rescheduling"
    await send(loop, session_id, INTERRUPT)

    events = await wait_idle(loop, session_id)
    assert [e.error.retry_status.type for e in of_type(events, "session.error")] == ["retrying"]
    assert types(events)[-4:] == [
        "user.interrupt",
        "session.thread_status_idle",
        "session.usage",
        "session.status_idle",
    ]
    assert stop_reason(idles(events)[0]) == {"type": "end_turn"}
