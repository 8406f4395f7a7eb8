"""The `auto` permission policy through the SDK: the server's judge (the offline model, reading
the `#deny` / `#ask` markers of the call's input) allows, denies or holds each call, and records
the judgement in the tool-use event's `evaluation`; the judge's tokens are billed to the session."""

from __future__ import annotations

import json
from typing import Any

import anthropic

from app.agent_loop import judge
from app.offline import judging
from app.offline.engine import validate
from tests.support.loop import (
    MODEL,
    assert_log_sane,
    idles,
    message,
    of_type,
    result_text,
    send,
    stop_reason,
    texts,
    wait_idle,
)

SDK = anthropic.AsyncAnthropic
AUTO = {"type": "auto"}


def bash(command: str) -> str:
    return "/tool bash " + json.dumps({"command": command})


async def auto_session(client: SDK) -> str:
    toolset = {"type": "agent_toolset_20260401", "default_config": {"permission_policy": AUTO}}
    agent = await client.beta.agents.create(name="judged", model=MODEL, tools=[toolset])  # type: ignore[list-item]
    [tools] = agent.tools
    assert tools.default_config.permission_policy.type == "auto"  # type: ignore[union-attr]
    environment = await client.beta.environments.create(name=f"env-{agent.id[-8:]}")
    return (await client.beta.sessions.create(agent=agent.id, environment_id=environment.id)).id


def judgement(use: Any) -> dict[str, Any]:
    assert use.evaluation.type == "auto"
    found: dict[str, Any] = use.evaluation.evaluated_permission.model_dump()
    assert found["type"] == use.evaluated_permission  # the SDK's invariant
    return found


async def test_a_judged_safe_call_runs(loop: SDK) -> None:
    session_id = await auto_session(loop)
    await send(loop, session_id, message(bash("echo judged-safe")))
    events = await wait_idle(loop, session_id)
    [use] = of_type(events, "agent.tool_use")
    assert judgement(use) == {"type": "allow"}
    [result] = of_type(events, "agent.tool_result")
    assert not result.is_error and result_text(result).strip() == "judged-safe"
    assert stop_reason(idles(events)[0]) == {"type": "end_turn"}
    # The judge's request is billed on top of the agent's own requests.
    spans = of_type(events, "span.model_request_end")
    session = await loop.beta.sessions.retrieve(session_id)
    assert session.usage.input_tokens > sum(s.model_usage.input_tokens for s in spans)


async def test_a_judged_high_risk_call_is_denied_and_never_runs(loop: SDK) -> None:
    session_id = await auto_session(loop)
    await send(loop, session_id, message(bash("echo should-not-run #deny")))
    events = await wait_idle(loop, session_id)
    assert_log_sane(events)
    [use] = of_type(events, "agent.tool_use")
    assert judgement(use) == {"type": "deny", "reason_code": "high_risk"}
    [result] = of_type(events, "agent.tool_result")
    assert result.is_error and "denied" in result_text(result) and "should-not-run" not in result_text(result)
    assert "denied" in texts(events)[-1]  # the model was told
    assert stop_reason(idles(events)[0]) == {"type": "end_turn"}


async def test_an_undecided_call_is_held_for_the_client(loop: SDK) -> None:
    session_id = await auto_session(loop)
    await send(loop, session_id, message(bash("echo held #ask") + "\n" + bash("echo free")))
    events = await wait_idle(loop, session_id)
    held, free = of_type(events, "agent.tool_use")
    assert judgement(held) == {"type": "ask", "reason_code": "indeterminate"}
    assert judgement(free) == {"type": "allow"}
    assert stop_reason(idles(events)[0]) == {"type": "requires_action", "event_ids": [held.id]}

    await send(
        loop, session_id, {"type": "user.tool_confirmation", "tool_use_id": held.id, "result": "allow"}
    )
    events = await wait_idle(loop, session_id, 2)
    results = {r.tool_use_id: result_text(r).strip() for r in of_type(events, "agent.tool_result")}
    assert results == {held.id: "held", free.id: "free"}  # `#ask` is a bash comment
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}


def test_the_offline_model_recognises_the_harness_judge_request() -> None:
    request = judge.request("claude-sonnet-4-6", "bash", {"command": "rm -rf / #deny"}, [])
    tool_input = judging.judge_input(validate(request.to_params()))
    assert tool_input is not None and "#deny" in tool_input
    assert judge.read_judgement(judging.answer(tool_input)) == {"type": "deny", "reason_code": "high_risk"}
    assert judge.read_judgement("I am not sure.") == {"type": "ask", "reason_code": "indeterminate"}
    assert (
        judging.judge_input({"model": "m", "messages": [{"role": "user", "content": "<input>x</input>"}]})
        is None
    )
