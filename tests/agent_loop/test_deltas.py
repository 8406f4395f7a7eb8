"""Event deltas from real model streams: previews of `agent.message` that the SDK's accumulator
folds into exactly the final message, only on connections that asked, and never in the history."""

from __future__ import annotations

from typing import Any

import anthropic
from anthropic.lib.sessions import accumulate_managed_agents_event

from tests.support.loop import (
    idles,
    log,
    message,
    new_session,
    of_type,
    send,
    stop_reason,
    texts,
    types,
)
from tests.support.streams import read_turn, read_until

SDK = anthropic.AsyncAnthropic


async def streamed_turn(loop: SDK, session_id: str, prompt: str, **params: Any) -> list[Any]:
    async with await loop.beta.sessions.events.stream(session_id, **params) as stream:
        await send(loop, session_id, message(prompt))
        return await read_turn(stream)


def fold(events: list[Any]) -> Any:
    """What a client shows: the SDK accumulator over the stream (it raises on protocol errors)."""
    snapshot = None
    for event in events:
        snapshot = accumulate_managed_agents_event(snapshot, event)
    return snapshot


async def test_deltas_of_a_message_add_up_to_the_final_message(loop: SDK) -> None:
    session_id = await new_session(loop)
    events = await streamed_turn(loop, session_id, "/long 600", event_deltas=["agent.message"])

    final = of_type(events, "agent.message")[0]
    start = of_type(events, "event_start")[0]
    deltas = of_type(events, "event_delta")
    assert start.event.type == "agent.message" and start.event.id == final.id
    assert len(deltas) > 1 and {d.event_id for d in deltas} == {final.id}
    assert "".join(d.delta.content.text for d in deltas) == texts(events)[0]
    assert len(texts(events)[0]) == 600
    assert types(events)[3:6] == ["span.model_request_start", "event_start", "event_delta"]
    message_at = types(events).index("agent.message")
    assert set(types(events)[5:message_at]) == {"event_delta"}
    assert types(events)[message_at + 1] == "span.model_request_end"
    assert fold(events).content == final.content


async def test_each_request_of_a_turn_gets_its_own_preview(loop: SDK) -> None:
    session_id = await new_session(loop)
    prompt = '/say checking\n/tool bash {"command": "echo ok"}'
    events = await streamed_turn(loop, session_id, prompt, event_deltas=["agent.message"])

    finals = of_type(events, "agent.message")
    assert [s.event.id for s in of_type(events, "event_start")] == [m.id for m in finals]
    for final in finals:
        text = "".join(d.delta.content.text for d in of_type(events, "event_delta") if d.event_id == final.id)
        assert text == "".join(b.text for b in final.content)


async def test_a_thinking_preview_is_a_start_without_deltas(loop: SDK) -> None:
    session_id = await new_session(loop)
    deltas = ["agent.message", "agent.thinking"]
    events = await streamed_turn(loop, session_id, "/think\n/say thought about it", event_deltas=deltas)

    thinking = of_type(events, "agent.thinking")[0]
    starts = {s.event.type: s.event.id for s in of_type(events, "event_start")}
    assert starts == {"agent.thinking": thinking.id, "agent.message": of_type(events, "agent.message")[0].id}
    assert {d.event_id for d in of_type(events, "event_delta")} == {starts["agent.message"]}
    assert types(events).index("event_start") < types(events).index("agent.thinking")


async def test_without_event_deltas_a_stream_gets_no_previews(loop: SDK) -> None:
    session_id = await new_session(loop)
    events = await streamed_turn(loop, session_id, "/long 600")

    assert "event_start" not in types(events) and "event_delta" not in types(events)
    assert texts(events) == texts(await log(loop, session_id))


async def test_previews_are_never_in_the_history(loop: SDK) -> None:
    session_id = await new_session(loop)
    streamed = await streamed_turn(loop, session_id, "/long 300", event_deltas=["agent.message"])
    listed = await log(loop, session_id)

    assert "event_delta" in types(streamed)
    assert [e.id for e in listed] == [e.id for e in streamed if e.type not in ("event_start", "event_delta")]


async def test_an_interrupted_preview_is_closed_by_the_span_end_without_a_message(loop: SDK) -> None:
    session_id = await new_session(loop)
    async with await loop.beta.sessions.events.stream(session_id, event_deltas=["agent.message"]) as stream:
        # 84 deltas spread over 30 s: only the interrupt ends this request within the waits.
        await send(loop, session_id, message("/long 2000\n/sleep 30000"))
        seen = await read_until(stream, lambda e: e.type == "event_delta")
        await send(loop, session_id, {"type": "user.interrupt"})
        seen += await read_turn(stream)

    assert "agent.message" not in types(seen)
    assert types(seen).index("span.model_request_end") > types(seen).index("event_delta")
    assert stop_reason(idles(seen)[0]) == {"type": "end_turn"}
    snapshot = fold(seen)  # what a client showed stays a prefix of the text never finished
    assert snapshot.id == of_type(seen, "event_start")[0].event.id
    assert 0 < len(snapshot.content[0].text) < 2000
    assert ("offline filler text " * 100).startswith(snapshot.content[0].text)


async def test_a_preview_cut_by_a_failed_attempt_is_followed_by_a_fresh_one(loop: SDK) -> None:
    session_id = await new_session(loop)
    events = await streamed_turn(loop, session_id, "/fault cut 1\n/long 300", event_deltas=["agent.message"])

    final = of_type(events, "agent.message")[0]
    starts = [s.event.id for s in of_type(events, "event_start")]
    assert len(starts) == 2 and starts[-1] == final.id and starts[0] != final.id
    retried = "".join(d.delta.content.text for d in of_type(events, "event_delta") if d.event_id == final.id)
    assert retried == texts(events)[0]
    assert fold(events).content == final.content
