"""The `multiagent_20261001` form run through the SDK with the offline model: inline agents
(defined by the delegating agent, tools from its own), `self` as a predefined agent, disabled
subagents and inline agents, and the advisor (a model with its own context and no tools)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pytest

from app.sessions import threads
from tests.support.loop import (
    MODEL,
    TOOLSET,
    always_ask,
    assert_log_sane,
    bash,
    children,
    custom_tool,
    idles,
    message,
    of_type,
    result_text,
    send,
    texts,
    thread_log,
    toolset,
    turn,
    types,
    wait_for,
    wait_idle,
)

SDK = anthropic.AsyncAnthropic
ADVISOR_MODEL = "claude-opus-4-6"


async def session_of(client: SDK, multiagent: Any, tools: list[Any] | None = None) -> str:
    agent = await client.beta.agents.create(
        name="lead",
        model=MODEL,
        tools=tools if tools is not None else [TOOLSET],  # type: ignore[list-item]
        multiagent=multiagent,
    )
    environment = await client.beta.environments.create(name=f"env-{agent.id[-8:]}")
    session = await client.beta.sessions.create(agent=agent.id, environment_id=environment.id)
    return session.id


def tool_names(events: list[Any]) -> list[str]:
    return [u.name for u in of_type(events, "agent.tool_use")]


async def test_an_inline_agent_runs_in_a_thread_with_tools_from_the_delegating_agents_own(loop: SDK) -> None:
    toolset = {"type": "agent_toolset_20260401", "configs": [{"name": "web_fetch", "enabled": False}]}
    session_id = await session_of(loop, {"type": "multiagent_20261001"}, [toolset])
    task = bash("echo inline-ok > inline.txt; echo inline-done")
    events = await turn(loop, session_id, f"/inline scout:bash,read {task}")

    assert_log_sane(events)
    assert tool_names(events) == ["send_to_agent"]
    (created,) = of_type(events, "session.thread_created")
    assert created.agent_name == "scout" and created.workflow_run_id is None
    (reply,) = of_type(events, "agent.thread_message_received")
    assert reply.from_agent_name == "scout" and result_text(reply) == "Tool results:\ninline-done"

    (thread,) = await children(loop, session_id)
    assert thread.id == created.session_thread_id and thread.agent.type == "inline"
    agent = thread.agent.model_dump()
    assert agent["name"] == "scout" and agent["model"]["id"] == MODEL
    assert agent["mcp_servers"] == [] and agent["skills"] == []
    (inline_toolset,) = agent["tools"]
    assert inline_toolset["default_config"]["enabled"] is False
    assert sorted(c["name"] for c in inline_toolset["configs"] if c["enabled"]) == ["bash", "read"]
    own = await thread_log(loop, session_id, thread.id)
    assert [u.name for u in of_type(own, "agent.tool_use")] == ["bash"]

    # A tool the delegating agent does not have itself is refused; so is a thread going deeper.
    bad = {"inline_agent": {"name": "x", "tools": ["web_fetch"]}, "message": "hi"}
    events = await turn(loop, session_id, "/tool send_to_agent " + json.dumps(bad))
    refused = of_type(events, "agent.tool_result")[-1]
    assert refused.is_error and "web_fetch" in result_text(refused)
    assert len(await children(loop, session_id)) == 1


async def test_an_inline_thread_cannot_delegate_further(loop: SDK) -> None:
    session_id = await session_of(loop, {"type": "multiagent_20261001"})
    events = await turn(loop, session_id, "/inline helper /inline deeper /say no")
    (reply,) = of_type(events, "agent.thread_message_received")
    # The thread has no orchestration tools: the offline model names the unknown tool.
    assert "send_to_agent" in result_text(reply) and len(await children(loop, session_id)) == 1


async def test_self_as_a_predefined_agent_with_inline_agents_disabled(loop: SDK) -> None:
    multiagent = {
        "type": "multiagent_20261001",
        "subagents": {
            "type": "enabled",
            "inline_agents": {"type": "disabled"},
            "predefined_agents": [{"type": "self"}],
        },
        "workflows": {"type": "disabled"},
    }
    session_id = await session_of(loop, multiagent)
    session = await loop.beta.sessions.retrieve(session_id)
    assert session.agent.multiagent is not None
    events = await turn(loop, session_id, "/delegate lead /say from my copy")
    (reply,) = of_type(events, "agent.thread_message_received")
    assert result_text(reply) == "from my copy"
    (thread,) = await children(loop, session_id)
    assert thread.agent.type == "agent" and thread.agent.id == session.agent.id

    inline = {"inline_agent": {"name": "x"}, "message": "hi"}
    events = await turn(loop, session_id, "/tool send_to_agent " + json.dumps(inline))
    refused = of_type(events, "agent.tool_result")[-1]
    assert refused.is_error and "inline agents are disabled" in result_text(refused)
    listed = await turn(loop, session_id, "/tool list_agents")
    assert "- lead" in result_text(of_type(listed, "agent.tool_result")[-1])


async def test_disabled_subagents_offer_no_delegation(loop: SDK) -> None:
    multiagent = {
        "type": "multiagent_20261001",
        "subagents": {"type": "disabled"},
        "workflows": {"type": "disabled"},
    }
    session_id = await session_of(loop, multiagent)
    events = await turn(loop, session_id, "/inline helper /say hi")
    assert tool_names(events) == [] and "send_to_agent" in texts(events)[-1]
    assert await children(loop, session_id) == []


@pytest.mark.parametrize("form", ["multiagent_20261001", "coordinator"])
async def test_the_advisor_answers_from_its_own_context(loop: SDK, form: str) -> None:
    if form == "coordinator":
        member = await loop.beta.agents.create(name="member", model=MODEL, tools=[TOOLSET])  # type: ignore[list-item]
        multiagent: Any = {
            "type": "coordinator",
            "agents": [member.id, {"type": "advisor", "model": ADVISOR_MODEL}],
        }
    else:
        multiagent = {
            "type": "multiagent_20261001",
            "advisor": {"type": "enabled", "model": ADVISOR_MODEL},
            "subagents": {"type": "disabled"},
            "workflows": {"type": "disabled"},
        }
    session_id = await session_of(loop, multiagent)
    events = await turn(loop, session_id, "/advise Which file first?")
    assert tool_names(events) == ["consult_advisor"]
    (created,) = of_type(events, "session.thread_created")
    assert created.agent_name == "anthropic.advisor"
    (answer,) = of_type(events, "agent.thread_message_received")
    answered = result_text(answer)
    assert answered.startswith("Offline model reply to") and answered.endswith('Which file first?"')
    assert "Which file first?" in texts(events)[-1]  # the agent went on with the advice

    # A second question goes to the same thread, which keeps its history.
    await send(loop, session_id, message("/advise And then?"))
    events = await wait_idle(loop, session_id, 2)
    (advisor,) = await children(loop, session_id)
    assert advisor.agent.type == "advisor" and advisor.agent.model == ADVISOR_MODEL
    own = await thread_log(loop, session_id, advisor.id)
    assert_log_sane(own)
    assert types(own).count("agent.thread_message_received") == 2
    assert "agent.tool_use" not in types(own)
    assert advisor.usage is not None and advisor.usage.output_tokens
    # The advisor's tokens count in the session's usage (the primary thread's shows its own).
    primary = (await loop.beta.sessions.threads.list(session_id)).data[0]
    session = await loop.beta.sessions.retrieve(session_id)
    assert primary.usage is not None and session.usage.output_tokens is not None
    assert session.usage.output_tokens == primary.usage.output_tokens + advisor.usage.output_tokens
    last_usage = of_type(events, "session.usage")[-1].usage
    listed = [s async for s in loop.beta.sessions.list(limit=100) if s.id == session_id]
    assert [s.usage.output_tokens for s in listed] == [session.usage.output_tokens]
    assert last_usage.output_tokens == session.usage.output_tokens
    if form == "coordinator":  # the advisor's roster name reaches it through send_to_agent too
        ask = {"agent": "anthropic.advisor", "message": "Third?"}
        events = await turn(loop, session_id, "/tool send_to_agent " + json.dumps(ask))
        assert len(await children(loop, session_id)) == 1
        assert result_text(of_type(events, "agent.thread_message_received")[-1]).endswith('\nThird?"')


async def test_a_threads_blocking_calls_are_cross_posted_and_answered_on_the_session(loop: SDK) -> None:
    member = await loop.beta.agents.create(name="clerk", model=MODEL, tools=[custom_tool()])  # type: ignore[list-item]
    multiagent: Any = {
        "type": "multiagent_20261001",
        "subagents": {"type": "enabled", "predefined_agents": [member.id]},
        "workflows": {"type": "disabled"},
    }
    session_id = await session_of(loop, multiagent, [toolset(always_ask("bash"))])
    lookup = "/tool lookup " + json.dumps({"key": "k1"})
    asks = "/tool bash " + json.dumps({"command": "echo never"})
    await send(loop, session_id, message(f"/delegate clerk {lookup}\n/inline asker:bash {asks}"))
    events = await wait_for(
        loop,
        session_id,
        lambda log: (
            len(
                [
                    e
                    for e in log
                    if e.type in ("agent.custom_tool_use", "agent.tool_use") and e.session_thread_id
                ]
            )
            == 2
            and "session.status_idle" in types(log)
        ),
    )
    posted = {
        e.type: e
        for e in events
        if e.type in ("agent.custom_tool_use", "agent.tool_use") and e.session_thread_id
    }
    threads = {t.agent.name: t for t in await children(loop, session_id)}
    custom, builtin = posted["agent.custom_tool_use"], posted["agent.tool_use"]
    assert custom.session_thread_id == threads["clerk"].id and custom.name == "lookup"
    assert builtin.session_thread_id == threads["asker"].id and builtin.evaluated_permission == "ask"
    waiting = [
        e for e in of_type(events, "session.thread_status_idle") if e.stop_reason.type == "requires_action"
    ]
    assert {e.session_thread_id for e in waiting} == {threads["clerk"].id, threads["asker"].id}

    # Answered on the session: by the cross-posted copy's id, or by the thread's own event id.
    own_ids = {e.session_thread_id: e.stop_reason.event_ids[0] for e in waiting}
    result = {
        "type": "user.custom_tool_result",
        "custom_tool_use_id": custom.id,
        "content": [{"type": "text", "text": "v1"}],
    }
    deny = {
        "type": "user.tool_confirmation",
        "tool_use_id": own_ids[threads["asker"].id],
        "result": "deny",
        "deny_message": "not now",
    }
    echoed = await send(loop, session_id, result, deny)
    assert [e.session_thread_id for e in echoed] == [threads["clerk"].id, threads["asker"].id]
    assert (await loop.beta.sessions.retrieve(session_id)).status == "running"  # its threads work
    events = await wait_for(
        loop, session_id, lambda log: len(of_type(log, "agent.thread_message_received")) == 2
    )
    replies = {r.from_agent_name: result_text(r) for r in of_type(events, "agent.thread_message_received")}
    assert replies["clerk"] == "Tool results:\nv1"
    assert "not now" in replies["asker"]
    clerk_log = await thread_log(loop, session_id, threads["clerk"].id)
    assert "user.custom_tool_result" in types(clerk_log)

    with pytest.raises(anthropic.BadRequestError):  # answered already: nothing waits on it
        await send(loop, session_id, result)
    events = await wait_idle(loop, session_id, 2)
    assert types(events)[-1] == "session.status_idle"


async def test_the_advisor_is_not_counted_in_the_thread_limit(
    loop: SDK, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the limit of working threads reached, a further delegation is refused and the advisor
    still answers (the documented limit exempts advisor threads). The limit is lowered to one, and
    the delegated thread works until it is interrupted."""
    monkeypatch.setattr(threads, "MAX_ACTIVE_THREADS", 1)
    first = await loop.beta.agents.create(name="first", model=MODEL, tools=[TOOLSET])  # type: ignore[list-item]
    second = await loop.beta.agents.create(name="second", model=MODEL, tools=[TOOLSET])  # type: ignore[list-item]
    multiagent: Any = {
        "type": "coordinator",
        "agents": [first.id, second.id, {"type": "advisor", "model": ADVISOR_MODEL}],
    }
    session_id = await session_of(loop, multiagent)

    sleep = bash("sleep 600")
    await send(loop, session_id, message(f"/delegate first {sleep}\n/delegate second {sleep}\n/advise Next?"))

    def answered(log: list[Any]) -> bool:
        replies = [result_text(r) for r in of_type(log, "agent.thread_message_received")]
        return len(of_type(log, "agent.tool_result")) == 3 and any(r.endswith('Next?"') for r in replies)

    events = await wait_for(loop, session_id, answered)
    assert tool_names(events) == ["send_to_agent", "send_to_agent", "consult_advisor"]
    results = {r.tool_use_id: r for r in of_type(events, "agent.tool_result")}
    uses = of_type(events, "agent.tool_use")
    delegations, advice = [results[u.id] for u in uses[:2]], results[uses[2].id]
    # The calls of one response run at once: whichever delegation comes second is refused.
    refused = [r for r in delegations if r.is_error]
    assert len(refused) == 1 and "1 threads are already working" in result_text(refused[0])
    assert not advice.is_error
    made = of_type(events, "session.thread_created")
    assert sorted(c.agent_name for c in made) in (
        ["anthropic.advisor", "first"],
        ["anthropic.advisor", "second"],
    )

    await send(loop, session_id, {"type": "user.interrupt"})
    (working,) = [c.session_thread_id for c in made if c.agent_name != "anthropic.advisor"]

    def stopped(log: list[Any]) -> bool:  # the primary and the working thread each stop
        thread_idles = of_type(log, "session.thread_status_idle")
        return bool(idles(log)) and any(e.session_thread_id == working for e in thread_idles)

    await wait_for(loop, session_id, stopped)
