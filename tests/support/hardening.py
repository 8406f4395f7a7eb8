"""Scenarios of the sandbox hardening (issue 8) run against any loop server: the local backend
in tests/worker, the real Docker engine in tests/sandbox."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

import anthropic

from tests.support.loop import (
    TIMEOUT,
    idles,
    log,
    message,
    new_session,
    of_type,
    result_text,
    send,
    stop_reason,
    texts,
    types,
)

SDK = anthropic.AsyncAnthropic
INTERRUPT = {"type": "user.interrupt"}


async def wait_until(
    client: SDK, session_id: str, done: Callable[[list[Any]], bool], patience: float
) -> list[Any]:
    """The log once `done(log)` holds; fail (never hang) after `patience` seconds."""
    deadline = time.monotonic() + patience
    while True:
        events = await log(client, session_id)
        if done(events):
            return events
        assert time.monotonic() < deadline, f"timed out waiting on {session_id}; log: {types(events)}"
        await asyncio.sleep(0.1)


async def wait_idle(client: SDK, session_id: str, count: int = 1, patience: float = TIMEOUT) -> list[Any]:
    return await wait_until(client, session_id, lambda events: len(idles(events)) >= count, patience)


async def wait_type(client: SDK, session_id: str, kind: str, patience: float = TIMEOUT) -> list[Any]:
    return await wait_until(client, session_id, lambda events: kind in types(events), patience)


def tool(command: str, **extra: object) -> dict[str, object]:
    return message("/tool bash " + json.dumps({"command": command, **extra}))


async def interrupt_kills_a_sleeping_tool(client: SDK, patience: float = TIMEOUT) -> None:
    """`sleep 600` interrupted: the call is killed, the turn ends, the session can be deleted."""
    session_id = await new_session(client)
    await send(client, session_id, tool("sleep 600; echo finished"))
    await wait_type(client, session_id, "agent.tool_use", patience)
    await send(client, session_id, INTERRUPT)

    events = await wait_idle(client, session_id, patience=patience)
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
