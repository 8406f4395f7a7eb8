"""Permission policies in a running session: `always_ask` calls wait for the client's confirmation
(allow runs the tool, deny tells the model why), partial answers, and calls that are never run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import pytest

from tests.support.loop import (
    always_ask,
    assert_log_sane,
    idles,
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


def confirm(use_id: str, result: str, deny_message: str | None = None) -> dict[str, Any]:
    event = {"type": "user.tool_confirmation", "tool_use_id": use_id, "result": result}
    if deny_message is not None:
        event["deny_message"] = deny_message
    return event


def bash(command: str) -> str:
    return "/tool bash " + json.dumps({"command": command})


async def asking_session(loop: SDK, *commands: str) -> tuple[str, list[Any]]:
    """A session idle on requires_action, waiting on one `ask` bash call per command."""
    session_id = await new_session(loop, toolset(always_ask("bash")))
    await send(loop, session_id, message("\n".join(bash(c) for c in commands)))
    events = await wait_idle(loop, session_id)
    return session_id, of_type(events, "agent.tool_use")


async def test_an_always_ask_call_waits_idle_on_requires_action(loop: SDK) -> None:
    session_id, uses = await asking_session(loop, "echo hi")
    events = await wait_idle(loop, session_id)

    assert [(u.evaluated_permission, u.evaluation.type) for u in uses] == [("ask", "always_ask")]
    assert types(events)[3:] == [
        "span.model_request_start",
        "agent.tool_use",
        "span.model_request_end",
        "session.thread_status_idle",
        "session.usage",
        "session.status_idle",
    ]
    assert stop_reason(idles(events)[0]) == {"type": "requires_action", "event_ids": [uses[0].id]}
    assert of_type(events, "session.thread_status_idle")[0].stop_reason.type == "requires_action"
    assert (await loop.beta.sessions.retrieve(session_id)).status == "idle"


async def test_allow_runs_the_tool_and_the_turn_goes_on(loop: SDK) -> None:
    session_id, uses = await asking_session(loop, "echo allowed")
    echoed = await send(loop, session_id, confirm(uses[0].id, "allow"))
    assert echoed[0].processed_at is not None  # processed on receipt

    events = await wait_idle(loop, session_id, 2)
    after = types(events)[types(events).index("user.tool_confirmation") :]
    assert after[:4] == [
        "user.tool_confirmation",
        "session.status_running",
        "session.thread_status_running",
        "agent.tool_result",
    ]
    result = of_type(events, "agent.tool_result")[0]
    assert result.tool_use_id == uses[0].id and result_text(result) == "allowed" and not result.is_error
    assert texts(events)[-1] == "Tool results:\nallowed"
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}
    assert_log_sane(events)


async def test_deny_does_not_run_the_tool_and_the_model_reads_the_deny_message(
    loop: SDK, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    session_id, uses = await asking_session(loop, f"touch {marker}")
    await send(loop, session_id, confirm(uses[0].id, "deny", "not on my machine"))

    events = await wait_idle(loop, session_id, 2)
    result = of_type(events, "agent.tool_result")[0]
    assert result.tool_use_id == uses[0].id and result.is_error
    assert "not on my machine" in result_text(result)
    assert "not on my machine" in texts(events)[-1]
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}
    assert not marker.exists()


async def test_answering_some_calls_re_emits_the_idle_with_the_rest(loop: SDK) -> None:
    session_id, uses = await asking_session(loop, "echo one", "echo two")
    first, second = (u.id for u in uses)
    events = await wait_idle(loop, session_id)
    assert stop_reason(idles(events)[0]) == {"type": "requires_action", "event_ids": [first, second]}

    await send(loop, session_id, confirm(first, "allow"))
    events = await wait_idle(loop, session_id, 2)
    assert stop_reason(idles(events)[-1]) == {"type": "requires_action", "event_ids": [second]}
    assert "agent.tool_result" not in types(events)  # nothing runs until every call is answered
    assert (await loop.beta.sessions.retrieve(session_id)).status == "idle"

    await send(loop, session_id, confirm(second, "deny"))
    events = await wait_idle(loop, session_id, 3)
    results = {r.tool_use_id: r for r in of_type(events, "agent.tool_result")}
    assert result_text(results[first]) == "one" and not results[first].is_error
    assert results[second].is_error
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}
    assert types(events).count("session.status_running") == 2


async def test_several_confirmations_in_one_request_resume_at_once(loop: SDK) -> None:
    session_id, uses = await asking_session(loop, "echo a", "echo b")
    await send(loop, session_id, confirm(uses[0].id, "allow"), confirm(uses[1].id, "allow"))

    events = await wait_idle(loop, session_id, 2)
    assert [result_text(r) for r in of_type(events, "agent.tool_result")] == ["a", "b"]
    assert texts(events)[-1] == "Tool results:\na\nb"


@pytest.mark.parametrize("target", ["unknown", "answered"])
async def test_a_confirmation_for_a_call_not_waiting_is_rejected(loop: SDK, target: str) -> None:
    session_id, uses = await asking_session(loop, "echo x", "echo y")
    if target == "answered":
        await send(loop, session_id, confirm(uses[0].id, "allow"))
    tool_use_id = uses[0].id if target == "answered" else "sevt_does_not_exist"

    with pytest.raises(anthropic.BadRequestError) as raised:
        await send(loop, session_id, confirm(tool_use_id, "allow"))
    assert raised.value.status_code == 400
    assert tool_use_id in str(raised.value)
    # Nothing was written: the session still waits on the calls nobody answered.
    events = await wait_idle(loop, session_id)
    waiting = uses[1:] if target == "answered" else uses
    assert stop_reason(idles(events)[-1])["event_ids"] == [u.id for u in waiting]
    assert types(events).count("user.tool_confirmation") == (1 if target == "answered" else 0)


async def test_allowed_calls_of_a_response_run_before_it_waits_on_the_asked_ones(loop: SDK) -> None:
    ask_by_default = {
        "type": "agent_toolset_20260401",
        "default_config": {"permission_policy": {"type": "always_ask"}},
        "configs": [{"name": "write", "permission_policy": {"type": "always_allow"}}],
    }
    session_id = await new_session(loop, ask_by_default)
    write = '/tool write {"file_path": "a.txt", "content": "x"}'
    await send(loop, session_id, message(write + "\n" + bash("echo later")))
    events = await wait_idle(loop, session_id)

    uses = of_type(events, "agent.tool_use")
    assert [(u.name, u.evaluated_permission) for u in uses] == [("write", "allow"), ("bash", "ask")]
    assert [r.tool_use_id for r in of_type(events, "agent.tool_result")] == [uses[0].id]
    assert types(events).index("agent.tool_result") < types(events).index("session.status_idle")
    assert stop_reason(idles(events)[0]) == {"type": "requires_action", "event_ids": [uses[1].id]}


async def test_a_call_to_a_tool_that_is_not_enabled_is_denied_without_asking(loop: SDK) -> None:
    # The model is only offered enabled tools; a scripted model calls a disabled one anyway.
    script = [[{"content": [{"type": "tool_use", "name": "bash", "input": {"command": "echo no"}}]}]]
    system = "#offline-script-inline: " + json.dumps(script)
    session_id = await new_session(loop, toolset({"name": "bash", "enabled": False}), system=system)
    await send(loop, session_id, message("run it"))
    events = await wait_idle(loop, session_id)

    use = of_type(events, "agent.tool_use")[0]
    assert use.evaluated_permission == "deny"
    result = of_type(events, "agent.tool_result")[0]
    assert result.tool_use_id == use.id and result.is_error
    assert "not enabled" in result_text(result)
    assert stop_reason(idles(events)[0]) == {"type": "end_turn"}
    assert len(idles(events)) == 1


async def test_a_confirmation_sent_while_the_turn_still_runs_needs_no_idle(loop: SDK) -> None:
    session_id = await new_session(loop, toolset(always_ask("write")))
    slow = bash("sleep 1; echo slow")
    await send(loop, session_id, message(slow + '\n/tool write {"file_path": "w.txt", "content": "w"}'))
    events = await wait_type(loop, session_id, "agent.tool_use")
    asked = next(u for u in of_type(events, "agent.tool_use") if u.evaluated_permission == "ask")
    await send(loop, session_id, confirm(asked.id, "allow"))  # while bash still runs

    events = await wait_idle(loop, session_id)
    assert len(idles(events)) == 1 and stop_reason(idles(events)[0]) == {"type": "end_turn"}
    results = {r.tool_use_id: r for r in of_type(events, "agent.tool_result")}
    assert not results[asked.id].is_error
    assert texts(events)[-1].startswith("Tool results:\nslow\n")
