"""The live SSE stream: framing, heartbeats, deltas validation, and the three client patterns
(send-then-stream, stream-then-send, drop-and-reconcile) never losing or repeating an event."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import anthropic
import httpx
import pytest

from app.events.notifier import LogEvent, Notifier
from app.events.stream import FIRST_PAGE, PAGE, SessionStream
from app.events.types import EventRecord
from tests.support.factories import make_session_async, user_message
from tests.support.streams import TIMEOUT, ids, is_idle_frame, read_turn, read_until, sse_frames
from tests.support.turns import InProcessWorker


async def history(sdk: anthropic.AsyncAnthropic, session_id: str) -> list[str]:
    return [e.id async for e in sdk.beta.sessions.events.list(session_id)]


async def send(sdk: anthropic.AsyncAnthropic, session_id: str, text: str) -> str:
    sent = await sdk.beta.sessions.events.send(session_id, events=[user_message(text)])  # type: ignore[list-item]
    assert sent.data is not None
    return sent.data[0].id


def texts(events: Sequence[object]) -> list[str]:
    return [block.text for e in events for block in getattr(e, "content", []) if block.type == "text"]


async def test_every_frame_names_its_event_and_carries_the_json_event(
    manual_async_client: anthropic.AsyncAnthropic, manual_http: httpx.AsyncClient, producer: InProcessWorker
) -> None:
    session = await make_session_async(manual_async_client)
    await send(manual_async_client, session.id, "hi")
    await producer.turn(session.id)

    frames = []
    # The SDK asks for JSON; the stream answers with an event stream anyway.
    headers = {"accept": "application/json"}
    async with manual_http.stream(
        "GET", f"/v1/sessions/{session.id}/events/stream", headers=headers
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = await read_until(
            (f async for f in sse_frames(response) if not f.is_heartbeat), is_idle_frame, TIMEOUT
        )

    assert [f.json["id"] for f in frames] == await history(manual_async_client, session.id)
    for f in frames:
        assert f.event == f.json["type"]
        assert f.id is not None and f.id == f.json["id"] and f.id.startswith("sevt_")
        assert f.json["processed_at"]


async def test_an_idle_stream_gets_heartbeats_and_stays_open_across_turns(
    manual_async_client: anthropic.AsyncAnthropic, manual_http: httpx.AsyncClient, producer: InProcessWorker
) -> None:
    session = await make_session_async(manual_async_client)
    async with manual_http.stream("GET", f"/v1/sessions/{session.id}/events/stream") as response:
        frames = sse_frames(response)
        first = await read_until(frames, lambda f: f.is_heartbeat)
        assert first[-1].is_heartbeat and len(first) == 1
        for turn in range(2):
            await send(manual_async_client, session.id, f"turn {turn}")
            await producer.turn(session.id, replies=[f"answer {turn}"])
            turn_frames = await read_until((f async for f in frames if not f.is_heartbeat), is_idle_frame)
            assert [f.event for f in turn_frames][-1] == "session.status_idle"
            assert f"answer {turn}" in json.dumps([f.json for f in turn_frames])
            # Idle is not the end: the connection keeps beating.
            assert (await read_until(frames, lambda f: f.is_heartbeat))[-1].is_heartbeat


async def test_the_stream_ends_after_session_deleted(
    manual_async_client: anthropic.AsyncAnthropic, producer: InProcessWorker
) -> None:
    session = await make_session_async(manual_async_client)
    async with await manual_async_client.beta.sessions.events.stream(session.id) as stream:
        await producer.wait_for_subscribers(session.id, 1)
        await manual_async_client.beta.sessions.delete(session.id)
        received = await read_until(stream, lambda e: False)  # the server closes the stream
    assert [e.type for e in received] == ["session.deleted"]


async def test_event_deltas_accepts_only_previewable_types(
    manual_async_client: anthropic.AsyncAnthropic, manual_http: httpx.AsyncClient
) -> None:
    session = await make_session_async(manual_async_client)
    with pytest.raises(anthropic.BadRequestError, match="event_deltas"):
        await manual_async_client.beta.sessions.events.stream(session.id, event_deltas=["agent.tool_use"])  # type: ignore[list-item]
    params = {"event_deltas[]": ["agent.message", "agent.thinking"]}
    async with manual_http.stream(
        "GET", f"/v1/sessions/{session.id}/events/stream", params=params
    ) as response:
        assert response.status_code == 200


async def test_streaming_an_unknown_session_is_404(manual_async_client: anthropic.AsyncAnthropic) -> None:
    with pytest.raises(anthropic.NotFoundError):
        await manual_async_client.beta.sessions.events.stream("sesn_unknown")


# -- the three client patterns -------------------------------------------------------------------


async def test_send_then_stream_sees_the_whole_turn_even_when_it_finished_first(
    manual_async_client: anthropic.AsyncAnthropic, producer: InProcessWorker
) -> None:
    """Pattern (a), the SDK examples: send, then open the stream and read until idle. The producer
    is instant: every turn is over before the client connects."""
    sdk = manual_async_client
    session = await make_session_async(sdk)
    seen: list[str] = []
    for turn in range(3):
        message_id = await send(sdk, session.id, f"question {turn}")
        await producer.turn(session.id, replies=[f"answer {turn}"])
        async with await sdk.beta.sessions.events.stream(session.id) as stream:
            events = await read_turn(stream)
        assert message_id in ids(events)
        assert texts(events) == [f"question {turn}", f"answer {turn}"]
        assert not set(ids(events)) & set(seen), "an event of an earlier turn was sent again"
        seen += ids(events)
    assert seen == await history(sdk, session.id)


async def test_send_racing_the_stream_open_loses_nothing(
    manual_async_client: anthropic.AsyncAnthropic, producer: InProcessWorker
) -> None:
    """Pattern (a) with the turn produced while the stream is being opened."""
    sdk = manual_async_client
    session = await make_session_async(sdk)
    for turn in range(3):
        await send(sdk, session.id, f"question {turn}")

        async def read() -> list[object]:
            async with await sdk.beta.sessions.events.stream(session.id) as stream:
                return await read_turn(stream)

        events, _ = await asyncio.gather(read(), producer.turn(session.id, replies=[f"answer {turn}"]))
        assert texts(events) == [f"question {turn}", f"answer {turn}"]
    assert len(await history(sdk, session.id)) == len(set(await history(sdk, session.id)))


async def test_one_connection_across_several_turns(
    manual_async_client: anthropic.AsyncAnthropic, producer: InProcessWorker
) -> None:
    """Pattern (b) on one connection: open the stream, then send and read until idle, repeatedly."""
    sdk = manual_async_client
    session = await make_session_async(sdk)
    seen: list[str] = []
    async with await sdk.beta.sessions.events.stream(session.id) as stream:
        for turn in range(4):
            message_id = await send(sdk, session.id, f"question {turn}")
            await producer.turn(session.id, replies=[f"answer {turn}", f"more {turn}"])
            events = await read_turn(stream)
            assert ids(events)[0] != message_id  # session.status_running comes first
            assert texts(events) == [f"question {turn}", f"answer {turn}", f"more {turn}"]
            seen += ids(events)
    assert seen == await history(sdk, session.id)


async def test_a_new_connection_per_turn_never_sees_a_stale_idle(
    manual_async_client: anthropic.AsyncAnthropic, producer: InProcessWorker
) -> None:
    """Pattern (b) with a new connection per turn: the first idle read is this turn's."""
    sdk = manual_async_client
    session = await make_session_async(sdk)
    seen: list[str] = []
    for turn in range(4):
        async with await sdk.beta.sessions.events.stream(session.id) as stream:
            message_id = await send(sdk, session.id, f"question {turn}")
            await producer.turn(session.id, replies=[f"answer {turn}"])
            events = await read_turn(stream)
        assert message_id in ids(events), "the idle read belongs to an earlier turn"
        assert texts(events) == [f"question {turn}", f"answer {turn}"]
        assert not set(ids(events)) & set(seen)
        seen += ids(events)
    assert seen == await history(sdk, session.id)


async def test_dropping_mid_turn_then_reconnecting_and_listing_misses_nothing(
    manual_async_client: anthropic.AsyncAnthropic, producer: InProcessWorker
) -> None:
    """Pattern (c): drop the connection mid-turn, reconnect, list the history, dedupe by id."""
    sdk = manual_async_client
    session = await make_session_async(sdk)
    async with await sdk.beta.sessions.events.stream(session.id) as stream:
        await send(sdk, session.id, "question")
        await producer.start(session.id)
        await producer.reply(session.id, "part 1")
        first = await read_until(stream, lambda e: e.type == "user.message")
    # Offline while the turn goes on.
    await producer.reply(session.id, "part 2")
    async with await sdk.beta.sessions.events.stream(session.id) as stream:
        await producer.reply(session.id, "part 3")
        await producer.idle(session.id)
        second = await read_turn(stream)
        listed = await history(sdk, session.id)

    assert not set(ids(first)) & set(ids(second)), "the reconnected stream repeated events"
    merged = list(dict.fromkeys([*ids(first), *listed, *ids(second)]))
    assert sorted(merged) == sorted(listed)
    assert texts(second)[-1] == "part 3"
    assert ids(second)[-1] == listed[-1]


async def test_last_event_id_resumes_right_after_that_event(
    manual_async_client: anthropic.AsyncAnthropic, producer: InProcessWorker
) -> None:
    sdk = manual_async_client
    session = await make_session_async(sdk)
    for turn in range(2):
        await send(sdk, session.id, f"question {turn}")
        await producer.turn(session.id)
    listed = await history(sdk, session.id)
    for position in (0, len(listed) // 2, len(listed) - 2):
        headers = {"Last-Event-ID": listed[position]}
        async with await sdk.beta.sessions.events.stream(session.id, extra_headers=headers) as stream:
            events = await read_until(stream, lambda e: getattr(e, "id", None) == listed[-1])
        assert ids(events) == listed[position + 1 :]


async def test_a_long_backlog_is_replayed_whole_and_in_order_across_pages(
    manual_async_client: anthropic.AsyncAnthropic, producer: InProcessWorker
) -> None:
    sdk = manual_async_client
    session = await make_session_async(sdk)
    # More than the small first page plus one full page, and not a multiple of either.
    count = FIRST_PAGE + PAGE + 37
    for start in range(0, count, 500):
        batch: list[EventRecord] = [
            {"type": "agent.message", "content": [{"type": "text", "text": f"line {i}"}]}
            for i in range(start, min(count, start + 500))
        ]
        await producer.append(session.id, batch)
    listed = await history(sdk, session.id)
    assert len(listed) == count
    headers = {"Last-Event-ID": listed[0]}
    async with await sdk.beta.sessions.events.stream(session.id, extra_headers=headers) as stream:
        events = await read_until(stream, lambda e: getattr(e, "id", None) == listed[-1])
    assert ids(events) == listed[1:]
    assert texts(events)[:2] == ["line 1", "line 2"] and texts(events)[-1] == f"line {count - 1}"


async def test_the_first_page_of_a_backlog_is_sent_before_the_next_is_read() -> None:
    """Bounded memory and a prompt first frame: the stream reads one page, sends it, then reads
    the next; nothing of the backlog is read ahead of what was sent."""
    backlog = [LogEvent(seq, {"id": f"sevt_{seq}", "type": "agent.message"}) for seq in range(1, 2501)]
    reads: list[tuple[int, int]] = []

    async def fetch_after(seq: int, limit: int) -> list[LogEvent]:
        reads.append((seq, limit))
        return backlog[seq : seq + limit]

    async def save_watermark(seq: int) -> None:
        return None

    stream = SessionStream(Notifier(), "sesn_paged", 0, frozenset(), fetch_after, save_watermark, 30.0)
    frames = stream.frames()
    first = await anext(frames)
    assert reads == [(0, FIRST_PAGE)]
    assert first.count(b"event: agent.message") == FIRST_PAGE
    sent = first.count(b"event: agent.message")
    while sent < len(backlog):
        chunk = await anext(frames)
        sent += chunk.count(b"event: agent.message")
        assert sent == min(len(backlog), reads[-1][0] + reads[-1][1])
    await frames.aclose()
    assert reads == [(0, FIRST_PAGE), *((FIRST_PAGE + i * PAGE, PAGE) for i in range(3))]


# -- observers (the console, `mas sessions tail`) ------------------------------------------------


@pytest.mark.parametrize("observer", [True, False])
async def test_an_observer_stream_leaves_the_turn_to_the_client_that_sent(
    manual_async_client: anthropic.AsyncAnthropic, producer: InProcessWorker, observer: bool
) -> None:
    """A watcher follows a whole turn; then a send-then-stream client connects without
    `Last-Event-ID`. An observer (`x-mas-observer: 1`) leaves the turn to be replayed to that
    client; an ordinary stream counts as the client's and moves the watermark past it."""
    sdk = manual_async_client
    session = await make_session_async(sdk)
    headers = {"x-mas-observer": "1"} if observer else {}
    async with await sdk.beta.sessions.events.stream(session.id, extra_headers=headers) as watcher:
        first = await send(sdk, session.id, "watched question")
        await producer.turn(session.id, replies=["watched answer"])
        watched = await read_turn(watcher)
    assert first in ids(watched)

    # The sender's pattern: send, then stream and read until idle. Its own turn follows the
    # watched one, so the read ends either way; which idle comes first tells the paths apart.
    second = await send(sdk, session.id, "own question")
    await producer.turn(session.id, replies=["own answer"])
    async with await sdk.beta.sessions.events.stream(session.id) as stream:
        events = await read_turn(stream)
    if observer:
        assert ids(events) == ids(watched), "the observer took the watched turn's replay away"
    else:
        assert texts(events) == ["own question", "own answer"]
        assert second in ids(events)


async def test_an_observer_never_moves_the_watermark_across_reconnects(
    manual_async_client: anthropic.AsyncAnthropic, producer: InProcessWorker
) -> None:
    """Observers resuming with `Last-Event-ID` (as the console does) move nothing either."""
    sdk = manual_async_client
    session = await make_session_async(sdk)
    await send(sdk, session.id, "one")
    await producer.turn(session.id, replies=["answer one"])
    listed = await history(sdk, session.id)
    headers = {"x-mas-observer": "1", "Last-Event-ID": listed[0]}
    async with await sdk.beta.sessions.events.stream(session.id, extra_headers=headers) as watcher:
        assert ids(await read_turn(watcher)) == listed[1:]
    async with await sdk.beta.sessions.events.stream(session.id) as stream:
        assert ids(await read_turn(stream)) == listed


async def test_a_malformed_observer_header_is_a_400_in_the_envelope(
    manual_async_client: anthropic.AsyncAnthropic, manual_http: httpx.AsyncClient
) -> None:
    session = await make_session_async(manual_async_client)
    response = await manual_http.get(
        f"/v1/sessions/{session.id}/events/stream", headers={"x-mas-observer": "perhaps"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
