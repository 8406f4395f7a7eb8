"""MCP tools in running sessions, against real MCP servers on loopback: listed and offered as
`mcp__<server>__<tool>`, called with arguments (several at once), content mapped to blocks,
permissions through the confirmation flow, large outputs spilled, and the SSE transport."""

from __future__ import annotations

import asyncio
import base64
import time
from pathlib import Path

from app.events.notifier import Notifier
from app.mcp.hub import McpHub
from tests.mcp.support import SDK, call, errors, mcp_session, text_of
from tests.support.loop import message, of_type, send, stop_reason, texts, turn, types, wait_idle
from tests.support.mcp_servers import PNG, McpServerProcess, McpTestServer
from tests.support.server import ServerThread
from tests.support.streams import TIMEOUT, read_turn, read_until


async def test_tools_are_listed_offered_and_called_in_parallel(loop: SDK, calc: McpTestServer) -> None:
    session_id = await mcp_session(loop, {"calc": calc.url})

    events = await turn(
        loop,
        session_id,
        "\n".join(
            [
                call("calc", "add", a=2, b=3),
                call("calc", "slow", seconds=0.5, label="one"),
                call("calc", "slow", seconds=0.5, label="two"),
            ]
        ),
    )

    uses = of_type(events, "agent.mcp_tool_use")
    results = of_type(events, "agent.mcp_tool_result")
    assert [(u.name, u.mcp_server_name, u.input) for u in uses] == [
        ("add", "calc", {"a": 2, "b": 3}),
        ("slow", "calc", {"seconds": 0.5, "label": "one"}),
        ("slow", "calc", {"seconds": 0.5, "label": "two"}),
    ]
    assert all((u.evaluated_permission, u.evaluation.type) == ("allow", "always_allow") for u in uses)
    assert [r.mcp_tool_use_id for r in results] == [u.id for u in uses]
    assert [(text_of(r), r.is_error) for r in results] == [
        ("5", False),
        ("slept 0.5 one", False),
        ("slept 0.5 two", False),
    ]
    assert calc.stats.most_at_once >= 2  # the two slow calls ran at the same time
    assert "agent.tool_result" not in types(events)
    assert stop_reason(of_type(events, "session.status_idle")[-1]) == {"type": "end_turn"}
    assert "5" in texts(events)[-1]  # the model got the results back


async def test_images_and_resources_become_content_blocks(loop: SDK, calc: McpTestServer) -> None:
    session_id = await mcp_session(loop, {"calc": calc.url})

    events = await turn(loop, session_id, call("calc", "picture") + "\n" + call("calc", "document"))

    picture, document = of_type(events, "agent.mcp_tool_result")
    assert picture.content[0].type == "image"
    assert picture.content[0].source.model_dump() == {
        "type": "base64",
        "media_type": "image/png",
        "data": base64.b64encode(PNG).decode(),
    }
    assert text_of(document) == "Resource file:///notes.txt:\nthe notes"


async def test_unknown_names_and_disabled_tools_are_not_offered(loop: SDK, calc: McpTestServer) -> None:
    session_id = await mcp_session(
        loop, {"calc": calc.url}, toolset_extra={"configs": [{"name": "delete_everything", "enabled": False}]}
    )

    events = await turn(loop, session_id, call("calc", "delete_everything"))

    offered = texts(events)[-1]
    assert "cannot call unknown tool" in offered and "mcp__calc__add" in offered
    assert 'mcp__calc__delete_everything"' in offered.split("(tools in this request")[0]
    assert "delete_everything" not in offered.split("(tools in this request")[1]
    assert "delete_everything" not in calc.stats.calls


async def test_mcp_tools_default_to_always_ask(loop: SDK, calc: McpTestServer) -> None:
    session_id = await mcp_session(loop, {"calc": calc.url}, policy=None)
    before = list(calc.stats.calls)

    events = await turn(loop, session_id, call("calc", "add", a=1, b=1) + "\n" + call("calc", "big", size=3))
    first, second = of_type(events, "agent.mcp_tool_use")

    assert [(u.evaluated_permission, u.evaluation.type) for u in (first, second)] == [
        ("ask", "always_ask")
    ] * 2
    assert stop_reason(of_type(events, "session.status_idle")[-1]) == {
        "type": "requires_action",
        "event_ids": [first.id, second.id],
    }
    assert calc.stats.calls == before  # nothing ran yet

    await send(
        loop,
        session_id,
        {"type": "user.tool_confirmation", "tool_use_id": first.id, "result": "allow"},
        {"type": "user.tool_confirmation", "tool_use_id": second.id, "result": "deny", "deny_message": "no"},
    )
    events = await wait_idle(loop, session_id, 2)

    results = {r.mcp_tool_use_id: r for r in of_type(events, "agent.mcp_tool_result")}
    allowed, denied = results[first.id], results[second.id]
    assert (text_of(allowed), allowed.is_error) == ("2", False)
    assert denied.is_error
    assert "denied" in text_of(denied) and "no" in text_of(denied)
    assert calc.stats.calls == [*before, "add"]


async def test_large_outputs_spill_into_the_sandbox(loop: SDK, calc: McpTestServer) -> None:
    session_id = await mcp_session(loop, {"calc": calc.url})

    events = await turn(loop, session_id, call("calc", "big", size=150_000))

    result = text_of(of_type(events, "agent.mcp_tool_result")[0])
    assert result.startswith("x" * 100_000) and len(result) < 101_000
    note = result.splitlines()[-1]
    assert "showing the first 100000 of 150000 characters" in note
    path = Path(note.split("full output in ")[1].rstrip("]"))
    assert await asyncio.to_thread(path.read_text) == "x" * 150_000


async def test_the_sse_transport_is_the_fallback(loop: SDK) -> None:
    server = await asyncio.to_thread(McpServerProcess(sse=True).start)
    try:
        session_id = await mcp_session(loop, {"legacy": server.url})
        events = await turn(loop, session_id, call("legacy", "add", a=20, b=22))
    finally:
        await asyncio.to_thread(server.kill)

    assert errors(events) == []
    assert [text_of(r) for r in of_type(events, "agent.mcp_tool_result")] == ["42"]


async def test_connections_are_reused_across_turns_and_closed_with_the_session(
    loop: SDK, mcp_loop_server: ServerThread
) -> None:
    hub: McpHub = mcp_loop_server.app.state.worker.deps.mcp
    server = McpTestServer().start()
    try:
        session_id = await mcp_session(loop, {"calc": server.url})
        await turn(loop, session_id, call("calc", "add", a=1, b=2))
        first = server.auth.posts
        events = await turn(loop, session_id, call("calc", "add", a=3, b=4))
        reused = server.auth.posts - first
        connected = hub.connected(session_id)
        await loop.beta.sessions.delete(session_id)
        deadline = time.monotonic() + 30
        while hub.connected(session_id) and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    finally:
        server.stop()

    assert [text_of(r) for r in of_type(events, "agent.mcp_tool_result")] == ["3", "7"]
    # A new connection would cost a handshake and a tools listing; the reused one, the call alone.
    assert reused == 1
    assert connected == ["calc"] and hub.connected(session_id) == []  # closed with the session


async def test_the_auto_policy_judges_each_mcp_call(loop: SDK, calc: McpTestServer) -> None:
    session_id = await mcp_session(loop, {"calc": calc.url}, policy="auto")
    before = list(calc.stats.calls)

    prompt = call("calc", "add", a=2, b=3) + "\n" + call("calc", "add", a=1, b=1, note="#deny")
    events = await turn(loop, session_id, prompt)
    allowed, denied = of_type(events, "agent.mcp_tool_use")

    assert allowed.evaluated_permission == "allow" and allowed.evaluation.type == "auto"
    assert allowed.evaluation.evaluated_permission.type == "allow"
    assert denied.evaluated_permission == "deny"
    assert denied.evaluation.evaluated_permission.reason_code == "high_risk"
    results = {r.mcp_tool_use_id: r for r in of_type(events, "agent.mcp_tool_result")}
    assert (text_of(results[allowed.id]), results[allowed.id].is_error) == ("5", False)
    assert results[denied.id].is_error and "denied" in text_of(results[denied.id])
    assert calc.stats.calls == [*before, "add"]  # the denied call never reached the server
    assert stop_reason(of_type(events, "session.status_idle")[-1]) == {"type": "end_turn"}


async def test_the_stream_announces_a_call_while_the_server_runs_it(
    loop: SDK, calc: McpTestServer, mcp_loop_server: ServerThread
) -> None:
    """The frames of a response whose MCP calls start at once wait for the requests to go out,
    never for the calls to end (the stream would still get them from the log, a second later)."""
    notifier: Notifier = mcp_loop_server.app.state.worker.deps.notifier
    session_id = await mcp_session(loop, {"calc": calc.url})
    calc.stats.gate.clear()
    try:
        async with await loop.beta.sessions.events.stream(session_id) as stream:
            await send(loop, session_id, message(call("calc", "gated")))
            seen = await read_until(stream, lambda e: e.type == "agent.mcp_tool_use")
            async with asyncio.timeout(TIMEOUT):
                while calc.stats.running == 0 or notifier.holding(session_id):  # noqa: ASYNC110
                    await asyncio.sleep(0.01)
            calc.stats.gate.set()
            seen += await read_turn(stream)
    finally:
        calc.stats.gate.set()

    [use] = of_type(seen, "agent.mcp_tool_use")
    [result] = of_type(seen, "agent.mcp_tool_result")
    assert (use.name, result.mcp_tool_use_id, text_of(result)) == ("gated", use.id, "opened")
    assert types(seen).index("agent.mcp_tool_use") < types(seen).index("agent.mcp_tool_result")


async def test_an_interrupt_abandons_a_running_mcp_call(loop: SDK, calc: McpTestServer) -> None:
    """An MCP call runs from the server, not in the sandbox: an interrupt cannot kill it there, so
    the turn stops waiting for it (the server's answer would come when the call's timeout, a
    minute here, had passed)."""
    session_id = await mcp_session(loop, {"calc": calc.url})
    calc.stats.gate.clear()
    try:
        await send(loop, session_id, message(call("calc", "gated")))
        async with asyncio.timeout(TIMEOUT):
            while calc.stats.running == 0:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        await send(loop, session_id, {"type": "user.interrupt"})
        events = await wait_idle(loop, session_id)
    finally:
        calc.stats.gate.set()

    [use] = of_type(events, "agent.mcp_tool_use")
    [result] = of_type(events, "agent.mcp_tool_result")
    assert result.mcp_tool_use_id == use.id and result.is_error
    assert "interrupted by user.interrupt" in text_of(result)
    assert "user.interrupt" in types(events)
