"""MCP servers that cannot be used: unreachable, refusing the session (401), or killed while a
call runs. The session reports it, goes on with its other tools, and tries again next turn."""

from __future__ import annotations

import asyncio

from tests.mcp.support import SDK, call, errors, mcp_session, text_of
from tests.support.loop import TOOLSET, of_type, stop_reason, texts, turn, wait_for
from tests.support.mcp_servers import Auth, McpServerProcess, McpTestServer, free_port


async def test_an_unreachable_server_is_a_session_error_and_is_retried(
    loop: SDK, calc: McpTestServer
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/mcp"
    session_id = await mcp_session(loop, {"gone": dead, "calc": calc.url})

    events = await turn(loop, session_id, call("calc", "add", a=1, b=2))
    again = await turn(loop, session_id, "hello again")

    [error] = errors(events)
    assert (error.type, error.mcp_server_name, error.retry_status.type) == (
        "mcp_connection_failed_error",
        "gone",
        "exhausted",
    )
    assert "could not connect" in error.message
    # The turn went on with the tools that work.
    assert [text_of(r) for r in of_type(events, "agent.mcp_tool_result")] == ["3"]
    assert stop_reason(of_type(events, "session.status_idle")[-1]) == {"type": "end_turn"}
    assert [e.mcp_server_name for e in errors(again)] == ["gone", "gone"]  # tried again next turn


async def test_a_401_is_an_authentication_error(loop: SDK) -> None:
    server = McpTestServer(auth=Auth(required=True)).start()
    try:
        session_id = await mcp_session(loop, {"private": server.url}, extra_tools=[TOOLSET])
        events = await turn(
            loop, session_id, call("private", "add", a=1, b=1) + '\n/tool bash {"command": "echo ok"}'
        )
    finally:
        server.stop()

    [error] = errors(events)
    assert (error.type, error.mcp_server_name, error.retry_status.type) == (
        "mcp_authentication_failed_error",
        "private",
        "exhausted",
    )
    assert "HTTP 401" in error.message
    # The MCP tools are not offered; the built-in ones still are.
    assert "mcp__private__add" in texts(events)[-1] and "bash" in texts(events)[-1]
    assert server.stats.calls == []


async def test_a_server_killed_mid_call_gives_an_error_result(loop: SDK) -> None:
    server = McpServerProcess().start()
    try:
        session_id = await mcp_session(loop, {"fragile": server.url})
        await loop.beta.sessions.events.send(
            session_id,
            events=[
                {
                    "type": "user.message",
                    "content": [{"type": "text", "text": call("fragile", "slow", seconds=60)}],
                }
            ],
        )
        await wait_for(loop, session_id, lambda log: any(e.type == "agent.mcp_tool_use" for e in log))
        await asyncio.sleep(1.0)  # let the call reach the server
        await asyncio.to_thread(server.kill)
        events = await wait_for(
            loop, session_id, lambda log: any(e.type == "session.status_idle" for e in log)
        )
    finally:
        await asyncio.to_thread(server.kill)

    [result] = of_type(events, "agent.mcp_tool_result")
    assert result.is_error
    assert "'fragile'" in text_of(result) and "lost" in text_of(result)
    assert stop_reason(of_type(events, "session.status_idle")[-1]) == {"type": "end_turn"}
