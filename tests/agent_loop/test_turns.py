"""Whole turns of the agent loop through the SDK: the documented event order, parallel tool calls,
usage on the session, custom tools answered by the client, and steering a running turn."""

from __future__ import annotations

import json

import anthropic

from tests.support.loop import (
    TOOLSET,
    assert_log_sane,
    custom_tool,
    idles,
    log,
    message,
    new_session,
    of_type,
    result_text,
    send,
    stop_reason,
    texts,
    turn,
    types,
    wait_idle,
    wait_type,
)
from tests.support.streams import ids, read_turn

SDK = anthropic.AsyncAnthropic

ONE_TOOL_TURN = [
    "session.status_running",
    "session.thread_status_running",
    "user.message",
    "span.model_request_start",
    "agent.message",
    "agent.tool_use",
    "span.model_request_end",
    "agent.tool_result",
    "span.model_request_start",
    "agent.message",
    "span.model_request_end",
    "session.thread_status_idle",
    "session.usage",
    "session.status_idle",
]


async def test_a_turn_with_a_tool_follows_the_documented_order_on_the_stream_and_in_the_list(
    loop: SDK,
) -> None:
    session_id = await new_session(loop)
    async with await loop.beta.sessions.events.stream(session_id) as stream:
        await send(loop, session_id, message('/say Let me look.\n/tool bash {"command": "echo hello"}'))
        streamed = await read_turn(stream)
    listed = await log(loop, session_id)

    assert types(listed) == ONE_TOOL_TURN
    assert ids(streamed) == ids(listed)
    assert_log_sane(listed)
    use = of_type(listed, "agent.tool_use")[0]
    assert (use.name, use.input, use.evaluated_permission) == ("bash", {"command": "echo hello"}, "allow")
    result = of_type(listed, "agent.tool_result")[0]
    assert result.tool_use_id == use.id and not result.is_error and result_text(result) == "hello"
    starts, ends = of_type(listed, "span.model_request_start"), of_type(listed, "span.model_request_end")
    assert [e.model_request_start_id for e in ends] == [s.id for s in starts]
    assert not any(e.is_error for e in ends)
    assert texts(listed) == ["Let me look.", "Tool results:\nhello"]
    assert stop_reason(idles(listed)[0]) == {"type": "end_turn"}
    assert of_type(listed, "session.thread_status_idle")[0].stop_reason.type == "end_turn"


async def test_usage_accumulates_on_the_session_across_requests_and_turns(loop: SDK) -> None:
    session_id = await new_session(loop)
    await turn(loop, session_id, '/tool bash {"command": "true"}')
    events = await turn(loop, session_id, "and again")

    spans = [e.model_usage for e in of_type(events, "span.model_request_end")]
    usage = (await loop.beta.sessions.retrieve(session_id)).usage
    assert len(spans) == 3
    assert usage.output_tokens == sum(u.output_tokens for u in spans) > 0
    assert usage.input_tokens == sum(u.input_tokens for u in spans)
    # The harness caches every request: later requests read what the first one wrote.
    assert usage.cache_read_input_tokens == sum(u.cache_read_input_tokens for u in spans) > 0
    assert usage.cache_creation is not None
    written = usage.cache_creation.ephemeral_5m_input_tokens
    assert written == sum(u.cache_creation_input_tokens for u in spans) > 0
    assert usage.list_cost is not None and usage.list_cost.currency == "USD"
    assert int(usage.list_cost.amount) >= 0
    # The snapshot just before the idle is the session's usage at that moment.
    snapshot = of_type(events, "session.usage")[-1].usage
    assert (snapshot.output_tokens, snapshot.cache_read_input_tokens) == (
        usage.output_tokens,
        usage.cache_read_input_tokens,
    )


async def test_parallel_tool_calls_get_their_results_in_call_order_after_the_span_ends(loop: SDK) -> None:
    session_id = await new_session(loop)
    calls = [
        '/tool bash {"command": "sleep 0.3; echo first"}',
        '/tool bash {"command": "echo second"}',
        '/tool write {"file_path": "note.txt", "content": "third"}',
    ]
    events = await turn(loop, session_id, "\n".join(calls))

    uses, results = of_type(events, "agent.tool_use"), of_type(events, "agent.tool_result")
    assert len(uses) == 3
    end = types(events).index("span.model_request_end")
    assert (
        types(events)[end - 3 : end + 4]
        == ["agent.tool_use"] * 3 + ["span.model_request_end"] + ["agent.tool_result"] * 3
    )
    assert [r.tool_use_id for r in results] == [u.id for u in uses]
    assert [result_text(r) for r in results[:2]] == ["first", "second"]
    assert not any(r.is_error for r in results)
    assert texts(events)[-1].startswith("Tool results:\nfirst\nsecond\n")


async def test_a_second_turn_continues_the_same_conversation(loop: SDK) -> None:
    session_id = await new_session(loop)
    await turn(loop, session_id, '/tool write {"file_path": "kept.txt", "content": "still here"}')
    events = await turn(loop, session_id, '/tool read {"file_path": "kept.txt"}')

    assert len(idles(events)) == 2
    assert "still here" in result_text(of_type(events, "agent.tool_result")[-1])
    assert types(events).count("session.status_running") == 2
    assert_log_sane(events)


async def test_a_custom_tool_call_waits_for_the_client_and_the_answer_sees_its_result(loop: SDK) -> None:
    session_id = await new_session(loop, TOOLSET, custom_tool())
    await send(loop, session_id, message('/tool lookup {"key": "colour"}'))
    events = await wait_idle(loop, session_id)
    use = of_type(events, "agent.custom_tool_use")[0]
    assert (use.name, use.input) == ("lookup", {"key": "colour"})
    assert stop_reason(idles(events)[0]) == {"type": "requires_action", "event_ids": [use.id]}
    assert (await loop.beta.sessions.retrieve(session_id)).status == "idle"

    answer = {
        "type": "user.custom_tool_result",
        "custom_tool_use_id": use.id,
        "content": [{"type": "text", "text": "teal"}],
    }
    echoed = await send(loop, session_id, answer)
    assert echoed[0].processed_at is not None  # processed on receipt
    events = await wait_idle(loop, session_id, 2)

    after = types(events)[types(events).index("user.custom_tool_result") :]
    assert after[:3] == ["user.custom_tool_result", "session.status_running", "session.thread_status_running"]
    assert texts(events)[-1] == "Tool results:\nteal"
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}
    assert_log_sane(events)


async def test_a_custom_tool_result_sent_before_the_idle_also_resumes_the_turn(loop: SDK) -> None:
    session_id = await new_session(loop, TOOLSET, custom_tool())
    await send(
        loop,
        session_id,
        message('/tool lookup {"key": "size"}\n/tool bash {"command": "sleep 1; echo slow"}'),
    )
    events = await wait_type(loop, session_id, "agent.custom_tool_use")
    use = of_type(events, "agent.custom_tool_use")[0]
    answer = {
        "type": "user.custom_tool_result",
        "custom_tool_use_id": use.id,
        "content": [{"type": "text", "text": "large"}],
    }
    await send(loop, session_id, answer)  # while the bash call of the same response still runs

    events = await wait_idle(loop, session_id)
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}
    assert len(idles(events)) == 1
    assert texts(events)[-1] == "Tool results:\nlarge\nslow"


async def test_a_message_sent_during_a_slow_tool_steers_the_same_turn(loop: SDK) -> None:
    session_id = await new_session(loop)
    await send(loop, session_id, message('/tool bash {"command": "sleep 2; echo slept"}'))
    await wait_type(loop, session_id, "agent.tool_use")
    steer = (await send(loop, session_id, message("/say Changed my mind: steered.")))[0]
    assert steer.processed_at is None  # queued behind the running tool

    events = await wait_idle(loop, session_id)
    kinds = types(events)
    assert kinds.count("session.status_running") == 1 and kinds.count("session.status_idle") == 1
    at = [e.id for e in events].index(steer.id)
    assert kinds[at - 1] == "agent.tool_result" and kinds[at + 1] == "span.model_request_start"
    assert texts(events) == ["Changed my mind: steered."]
    assert stop_reason(idles(events)[0]) == {"type": "end_turn"}


async def test_a_message_sent_during_a_model_request_is_answered_in_the_same_turn(loop: SDK) -> None:
    session_id = await new_session(loop)
    await send(loop, session_id, message("/sleep 1000\n/say first answer"))
    await wait_type(loop, session_id, "span.model_request_start")
    await send(loop, session_id, message("/say second answer"))

    events = await wait_idle(loop, session_id)
    assert texts(events) == ["first answer", "second answer"]
    kinds = types(events)
    assert kinds.count("session.status_running") == 1 and kinds.count("session.status_idle") == 1
    assert kinds.count("span.model_request_start") == 2


async def test_a_session_created_with_initial_events_runs_its_first_turn_at_once(loop: SDK) -> None:
    agent = await loop.beta.agents.create(name="initial", model="claude-sonnet-4-6", tools=[TOOLSET])  # type: ignore[list-item]
    environment = await loop.beta.environments.create(name="initial-env")
    session = await loop.beta.sessions.create(
        agent=agent.id,
        environment_id=environment.id,
        initial_events=[message("/say started")],  # type: ignore[list-item]
    )

    events = await wait_idle(loop, session.id)
    assert types(events)[:4] == [
        "session.status_running",
        "session.thread_status_running",
        "user.message",
        "span.model_request_start",
    ]
    assert texts(events) == ["started"]
    assert types(events).count("session.status_running") == 1


async def test_a_refused_response_ends_the_turn_with_refusal(loop: SDK) -> None:
    refused = {"content": [{"type": "text", "text": "I can't help with that."}], "stop_reason": "refusal"}
    system = "#offline-script-inline: " + json.dumps(
        {"rules": [{"match": "forbidden", "responses": [refused]}]}
    )
    session_id = await new_session(loop, system=system)
    events = await turn(loop, session_id, "something forbidden")

    assert texts(events) == ["I can't help with that."]
    assert stop_reason(idles(events)[0]) == {"type": "refusal"}
    assert of_type(events, "session.thread_status_idle")[0].stop_reason.type == "refusal"
    events = await turn(loop, session_id, "/say something else")
    assert stop_reason(idles(events)[-1]) == {"type": "end_turn"}
