"""Multi-agent sessions through the SDK with the offline model: a coordinator delegates to two
agents whose threads run in parallel, each running bash in the session's shared sandbox; thread
and session streams agree with the logs; interrupts reach the threads; bad input is a 4xx."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import anthropic
import pytest

from tests.support.loop import (
    assert_log_sane,
    bash,
    children,
    coordinated_session,
    idles,
    log,
    message,
    of_type,
    result_text,
    send,
    stop_reason,
    texts,
    thread_log,
    types,
    wait_for,
    wait_idle,
)
from tests.support.streams import read_turn, read_until

SDK = anthropic.AsyncAnthropic


def thread_idles(events: list[Any], thread_id: str) -> list[Any]:
    return [e for e in of_type(events, "session.thread_status_idle") if e.session_thread_id == thread_id]


async def test_a_coordinator_delegates_to_two_agents_in_parallel_threads(loop: SDK) -> None:
    session_id, _ = await coordinated_session(loop, "alpha", "beta")
    primary = f"sthr_{session_id.removeprefix('sesn_')}"
    task_a = bash("echo from-alpha > shared-alpha.txt; echo alpha-done")
    task_b = bash("echo from-beta > shared-beta.txt; echo beta-done")
    async with await loop.beta.sessions.events.stream(session_id) as stream:
        await send(loop, session_id, message(f"/delegate alpha {task_a}\n/delegate beta {task_b}"))
        streamed = await read_turn(stream)

    events = await log(loop, session_id)
    assert [getattr(e, "id", None) for e in streamed] == [e.id for e in events]
    assert_log_sane(events)
    uses = of_type(events, "agent.tool_use")
    assert [u.name for u in uses] == ["send_to_agent", "send_to_agent"]
    created = of_type(events, "session.thread_created")
    assert sorted(c.agent_name for c in created) == ["alpha", "beta"]
    sent = of_type(events, "agent.thread_message_sent")
    assert {s.to_session_thread_id for s in sent} == {c.session_thread_id for c in created}
    replies = of_type(events, "agent.thread_message_received")
    by_thread = {r.from_session_thread_id: result_text(r) for r in replies}
    names = {c.session_thread_id: c.agent_name for c in created}
    assert {names[t]: text for t, text in by_thread.items()} == {
        "alpha": "Tool results:\nalpha-done",
        "beta": "Tool results:\nbeta-done",
    }
    # Each child's lifecycle is cross-posted; the session went idle only after both replied.
    for thread_id in names:
        assert len(thread_idles(events, thread_id)) == 1
    assert types(events)[-1] == "session.status_idle" and len(idles(events)) == 1
    assert stop_reason(idles(events)[0]) == {"type": "end_turn"}
    assert thread_idles(events, primary)[-1].id == events[-3].id

    threads = [t async for t in loop.beta.sessions.threads.list(session_id)]
    assert threads[0].id == primary and threads[0].parent_thread_id is None
    assert {t.agent.name for t in threads[1:]} == {"alpha", "beta"}  # type: ignore[union-attr]
    assert all(t.status == "idle" and t.parent_thread_id == primary for t in threads[1:])
    assert all(t.stats is not None and t.usage is not None for t in threads[1:])

    # The threads shared the session's sandbox: the coordinator reads what both wrote.
    await send(loop, session_id, message(bash("cat shared-alpha.txt shared-beta.txt")))
    events = await wait_idle(loop, session_id, 2)
    assert texts(events)[-1] == "Tool results:\nfrom-alpha\nfrom-beta"


async def test_thread_streams_and_logs_agree(loop: SDK) -> None:
    session_id, _ = await coordinated_session(loop, "gamma")
    await send(loop, session_id, message("/delegate gamma " + bash("echo g")))
    events = await wait_idle(loop, session_id)
    (thread,) = await children(loop, session_id)

    own = await thread_log(loop, session_id, thread.id)
    assert types(own) == [
        "session.thread_status_running",
        "agent.thread_message_received",
        "span.model_request_start",
        "agent.tool_use",
        "span.model_request_end",
        "agent.tool_result",
        "span.model_request_start",
        "agent.message",
        "span.model_request_end",
        "agent.thread_message_sent",
        "session.thread_status_idle",
    ]
    assert_log_sane(own)
    assert own[1].from_session_thread_id == f"sthr_{session_id.removeprefix('sesn_')}"
    assert own[1].from_agent_name == "lead"
    # The session's log is not the thread's: none of the thread's own events is on the primary.
    assert not {e.id for e in events} & {o.id for o in own}
    assert [u.name for u in of_type(events, "agent.tool_use")] == ["send_to_agent"]

    stream = await loop.beta.sessions.threads.events.stream(
        thread.id, session_id=session_id, extra_headers={"Last-Event-ID": "0"}
    )
    async with stream:
        replayed = await read_until(stream, lambda e: e.type == "session.thread_status_idle")
    assert [getattr(e, "id", None) for e in replayed] == [e.id for e in own]

    primary = f"sthr_{session_id.removeprefix('sesn_')}"
    primary_log = await thread_log(loop, session_id, primary)
    assert [e.id for e in primary_log] == [e.id for e in events]
    retrieved = await loop.beta.sessions.threads.retrieve(thread.id, session_id=session_id)
    assert retrieved.model_dump(exclude={"stats"}) == thread.model_dump(exclude={"stats"})


async def test_a_follow_up_reaches_the_same_thread_with_its_history(loop: SDK) -> None:
    session_id, _ = await coordinated_session(loop, "delta")
    await send(loop, session_id, message("/delegate delta " + bash("export MARK=kept; echo first")))
    await wait_idle(loop, session_id)
    (thread,) = await children(loop, session_id)
    follow_up = {"thread_id": thread.id, "message": bash("echo second")}
    await send(loop, session_id, message("/tool send_to_agent " + json.dumps(follow_up)))
    await wait_idle(loop, session_id, 2)

    own = await thread_log(loop, session_id, thread.id)
    assert len(of_type(own, "agent.thread_message_received")) == 2
    assert [result_text(r) for r in of_type(own, "agent.tool_result")] == ["first", "second"]
    assert len(await children(loop, session_id)) == 1


async def test_an_interrupt_reaches_the_threads(loop: SDK) -> None:
    session_id, _ = await coordinated_session(loop, "sleeper")
    await send(loop, session_id, message("/delegate sleeper " + bash("sleep 600")))

    async def sleeping() -> Any:
        found = await children(loop, session_id)
        if found and "agent.tool_use" in types(await thread_log(loop, session_id, found[0].id)):
            return found[0]
        return None

    thread = None
    while thread is None:
        thread = await sleeping()
        await asyncio.sleep(0.1)
    await send(loop, session_id, {"type": "user.interrupt"})

    # The primary and the thread each stop; the thread's idle is cross-posted to the session.
    events = await wait_for(loop, session_id, lambda log: bool(idles(log) and thread_idles(log, thread.id)))
    thread_events = await thread_log(loop, session_id, thread.id)
    result = of_type(thread_events, "agent.tool_result")[0]
    assert result.is_error
    assert "user.interrupt" in types(thread_events)
    assert (await loop.beta.sessions.threads.retrieve(thread.id, session_id=session_id)).status == "idle"
    assert thread_idles(events, thread.id)
    assert "user.interrupt" in types(events)


async def test_threads_bad_input(loop: SDK) -> None:
    session_id, _ = await coordinated_session(loop, "epsilon")
    primary = f"sthr_{session_id.removeprefix('sesn_')}"
    await send(loop, session_id, message("/delegate epsilon /say done"))
    await wait_idle(loop, session_id)
    (thread,) = await children(loop, session_id)

    with pytest.raises(anthropic.NotFoundError):
        await loop.beta.sessions.threads.retrieve("sthr_nope", session_id=session_id)
    with pytest.raises(anthropic.NotFoundError):
        await loop.beta.sessions.retrieve(thread.id)  # a thread is not a session
    with pytest.raises(anthropic.NotFoundError):
        [t async for t in loop.beta.sessions.threads.list("sesn_nope")]
    with pytest.raises(anthropic.BadRequestError):
        await loop.beta.sessions.threads.archive(primary, session_id=session_id)
    with pytest.raises(anthropic.BadRequestError):
        await send(loop, session_id, {"type": "user.interrupt", "session_thread_id": "sthr_nope"})
    with pytest.raises(anthropic.BadRequestError):
        await loop.beta.sessions.threads.list(session_id, page="garbage")
    with pytest.raises(anthropic.BadRequestError):
        await loop.beta.sessions.threads.list(session_id, statuses=["sleeping"])  # type: ignore[list-item]

    archived = await loop.beta.sessions.threads.archive(thread.id, session_id=session_id)
    assert archived.archived_at is not None and archived.status == "terminated"
    listed = [t.id async for t in loop.beta.sessions.threads.list(session_id)]
    assert listed == [primary, thread.id]
    unknown = {"thread_id": thread.id, "message": "/say again"}
    await send(loop, session_id, message("/tool send_to_agent " + json.dumps(unknown)))
    events = await wait_idle(loop, session_id, 2)
    refused = of_type(events, "agent.tool_result")[-1]
    assert refused.is_error and "archived" in result_text(refused)


async def test_threads_page_forward(loop: SDK) -> None:
    session_id, _ = await coordinated_session(loop, "zeta", "eta")
    await send(loop, session_id, message("/delegate zeta /say z\n/delegate eta /say e"))
    await wait_idle(loop, session_id)
    first = await loop.beta.sessions.threads.list(session_id, limit=2)
    assert len(first.data) == 2 and first.next_page
    rest = await loop.beta.sessions.threads.list(session_id, limit=2, page=first.next_page)
    assert len(rest.data) == 1 and rest.next_page is None
    idle_only = [t async for t in loop.beta.sessions.threads.list(session_id, statuses=["running"])]
    assert idle_only == []
