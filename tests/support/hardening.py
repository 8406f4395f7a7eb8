"""Scenarios of the sandbox hardening (issue 8) run against any loop server: the local backend
in tests/worker, the real Docker engine in tests/sandbox."""

from __future__ import annotations

import json

import anthropic

from tests.support.loop import (
    idles,
    message,
    new_session,
    of_type,
    result_text,
    send,
    stop_reason,
    texts,
    wait_idle,
    wait_type,
)

SDK = anthropic.AsyncAnthropic
INTERRUPT = {"type": "user.interrupt"}


def tool(command: str, **extra: object) -> dict[str, object]:
    return message("/tool bash " + json.dumps({"command": command, **extra}))


async def interrupt_kills_a_sleeping_tool(client: SDK) -> None:
    """`sleep 600` interrupted: the call is killed, the turn ends, the session can be deleted."""
    session_id = await new_session(client)
    await send(client, session_id, tool("sleep 600; echo finished"))
    await wait_type(client, session_id, "agent.tool_use")
    await send(client, session_id, INTERRUPT)

    events = await wait_idle(client, session_id)
    [result] = of_type(events, "agent.tool_result")
    assert result.is_error and "interrupted" in result_text(result)
    assert "finished" not in result_text(result)
    assert stop_reason(idles(events)[0]) == {"type": "end_turn"}
    assert types_after(events, result.id)[:2] == ["agent.tool_result", "user.interrupt"]
    await client.beta.sessions.archive(session_id)
    await client.beta.sessions.delete(session_id)


def types_after(events: list[object], event_id: str) -> list[str]:
    ids = [getattr(e, "id", None) for e in events]
    return [getattr(e, "type", "") for e in events[ids.index(event_id) :]]


async def long_tools_do_not_starve_other_sessions(client: SDK, slots: int) -> None:
    """More `sleep 600` calls than worker slots: another session's turn still runs to its end."""
    sleepers = [await new_session(client) for _ in range(slots + 1)]
    for session_id in sleepers:
        await send(client, session_id, tool("sleep 600"))
    for session_id in sleepers:
        await wait_type(client, session_id, "agent.tool_use")

    other = await new_session(client)
    await send(client, other, message("/say not starved"))
    events = await wait_idle(client, other)
    assert texts(events) == ["not starved"]
    for session_id in sleepers:  # still in their tools: nothing else could have freed a slot
        assert (await client.beta.sessions.retrieve(session_id)).status == "running"

    for session_id in sleepers:
        await send(client, session_id, INTERRUPT)
    for session_id in sleepers:
        events = await wait_idle(client, session_id)
        assert stop_reason(idles(events)[0]) == {"type": "end_turn"}
