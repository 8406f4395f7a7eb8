"""On a self-hosted environment the client runs the built-in tools: the session waits on
`requires_action` for a `user.tool_result` (as the SDK's session tool runner expects), and the
model gets the client's result."""

from __future__ import annotations

import anthropic

from tests.support.loop import (
    MODEL,
    TOOLSET,
    idles,
    message,
    of_type,
    send,
    stop_reason,
    texts,
    wait_idle,
)

SDK = anthropic.AsyncAnthropic


async def self_hosted_session(client: SDK) -> str:
    agent = await client.beta.agents.create(name="self-hosted", model=MODEL, tools=[TOOLSET])  # type: ignore[list-item]
    environment = await client.beta.environments.create(name="workers", config={"type": "self_hosted"})
    session = await client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    return session.id


async def test_built_in_tools_wait_for_the_clients_result(loop: SDK) -> None:
    session_id = await self_hosted_session(loop)
    await send(loop, session_id, message('/tool bash {"command": "hostname"}'))
    events = await wait_idle(loop, session_id)
    (use,) = of_type(events, "agent.tool_use")
    assert use.evaluated_permission == "allow"
    assert stop_reason(idles(events)[-1]) == {"type": "requires_action", "event_ids": [use.id]}
    assert not of_type(events, "agent.tool_result")  # nothing ran on the server

    await send(
        loop,
        session_id,
        {
            "type": "user.tool_result",
            "tool_use_id": use.id,
            "content": [{"type": "text", "text": "worker-7"}],
        },
    )
    events = await wait_idle(loop, session_id, count=2)
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}
    assert "worker-7" in texts(events)[-1]
