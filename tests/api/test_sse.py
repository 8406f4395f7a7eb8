"""The SSE response of the session streams (app/api/sse.py): a client that leaves is let go, and a
server told to stop ends its open streams instead of waiting for clients that never leave."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest

from tests.support.factories import make_session_async, user_message
from tests.support.fixtures import HEADERS
from tests.support.loop import fresh_database, new_session, process_environment, sdk
from tests.support.server import ServerProcess
from tests.support.streams import TIMEOUT, Frame, is_idle_frame, read_until, sse_frames
from tests.support.turns import InProcessWorker

TRICKY = 'quote " backslash \\ newline \n unicode é 漢字 🙂 line-sep \u2028 end'


async def wait_for_count(producer: InProcessWorker, session_id: str, count: int) -> None:
    async def current() -> int:
        return producer.notifier.subscriber_count(session_id)

    deadline = time.monotonic() + TIMEOUT
    while await producer.call(current) != count:
        assert time.monotonic() < deadline, f"{await producer.call(current)} streams, not {count}"
        await asyncio.sleep(0.02)


async def test_a_client_that_leaves_a_quiet_stream_is_unsubscribed_at_once(
    manual_async_client: anthropic.AsyncAnthropic, manual_http: httpx.AsyncClient, producer: InProcessWorker
) -> None:
    session = await make_session_async(manual_async_client)
    async with manual_http.stream("GET", f"/v1/sessions/{session.id}/events/stream") as response:
        assert response.status_code == 200
        await wait_for_count(producer, session.id, 1)
    # Nothing was sent on it since it opened: only the disconnect can tell the server.
    await wait_for_count(producer, session.id, 0)


async def test_an_open_stream_gets_pings_while_the_session_is_quiet(
    manual_async_client: anthropic.AsyncAnthropic, manual_http: httpx.AsyncClient
) -> None:
    session = await make_session_async(manual_async_client)
    async with manual_http.stream("GET", f"/v1/sessions/{session.id}/events/stream") as response:
        assert response.headers["cache-control"] == "no-store"
        assert response.headers["x-accel-buffering"] == "no"
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        frames = await read_until(sse_frames(response), lambda f: len(f.comments) > 0, TIMEOUT)
    assert frames[0].comments[0].startswith("ping - ") and frames[0].event is None


@pytest.fixture
def database(tmp_path: Path) -> Iterator[str]:
    yield from fresh_database("sqlite", tmp_path)  # the stop is the same on either database


async def test_stopping_mas_serve_ends_its_open_streams_cleanly(database: str, tmp_path: Path) -> None:
    env = process_environment(database, tmp_path, lease_seconds=30)
    server = await asyncio.to_thread(ServerProcess(env).start)
    try:
        async with sdk(server.url) as client:
            session_id = await new_session(client)
        async with (
            httpx.AsyncClient(base_url=server.url, headers=HEADERS, timeout=TIMEOUT) as http,
            http.stream("GET", f"/v1/sessions/{session_id}/events/stream") as response,
        ):
            assert response.status_code == 200
            assert server.proc is not None
            server.proc.terminate()  # SIGTERM: what a service manager sends
            # The stream ends as a complete response (no cut connection), before uvicorn's
            # graceful-shutdown timeout would cancel it.
            rest = [chunk async for chunk in response.aiter_bytes()]
        assert all(chunk.startswith(b": ping") for chunk in rest)
        # uvicorn raises the signal again once it has shut down: the exit status is SIGTERM's.
        assert await asyncio.to_thread(server.proc.wait, TIMEOUT) in (0, -15)
    finally:
        await asyncio.to_thread(server.stop)


# -- the stream opened before FastAPI's router (app.api.fastpath.FastStream) -------------------------


async def turn_frames(http: httpx.AsyncClient, path: str, after: str, via_fastapi: bool) -> list[Frame]:
    # A GET with a body is declined by the fast path (FastAPI ignores a GET's body).
    extra = {"content": b" "} if via_fastapi else {}
    async with http.stream("GET", path, headers={"last-event-id": after}, **extra) as response:  # type: ignore[arg-type]
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["request-id"].startswith("req_")
        return await read_until(
            (f async for f in sse_frames(response) if not f.is_heartbeat), is_idle_frame, TIMEOUT
        )


async def test_the_fast_path_streams_what_the_route_streams(
    manual_async_client: anthropic.AsyncAnthropic, manual_http: httpx.AsyncClient, producer: InProcessWorker
) -> None:
    session = await make_session_async(manual_async_client)
    await manual_async_client.beta.sessions.events.send(session.id, events=[user_message("hi")])  # type: ignore[list-item]
    await producer.turn(session.id, replies=(f"said {TRICKY}",))
    first = (await manual_async_client.beta.sessions.events.list(session.id, limit=1)).data[0].id
    path = f"/v1/sessions/{session.id}/events/stream"
    fast = await turn_frames(manual_http, path, first, via_fastapi=False)
    routed = await turn_frames(manual_http, path, first, via_fastapi=True)
    assert fast == routed and len(fast) > 2 and fast[0].id != first
    said = [b["text"] for f in fast if f.event == "agent.message" for b in f.json["content"]]
    assert said == [f"said {TRICKY}"]


async def test_a_stream_of_a_missing_session_is_the_same_404_on_both_paths(
    manual_http: httpx.AsyncClient,
) -> None:
    bodies = []
    for extra in ({}, {"content": b" "}):
        response = await manual_http.request("GET", "/v1/sessions/sesn_missing/events/stream", **extra)  # type: ignore[arg-type]
        assert response.status_code == 404
        body = response.json()
        assert body["request_id"] == response.headers["request-id"]
        assert body["error"]["type"] == "not_found_error"
        bodies.append({**body, "request_id": None})
    assert bodies[0] == bodies[1]


async def finished_turn(sdk: anthropic.AsyncAnthropic, producer: InProcessWorker) -> str:
    session = await make_session_async(sdk)
    await sdk.beta.sessions.events.send(session.id, events=[user_message("hi")])  # type: ignore[list-item]
    await producer.turn(session.id)
    return session.id


@pytest.mark.parametrize("via_fastapi", [False, True])
@pytest.mark.parametrize("last_event_id", ["9" * 30, "9" * 5000], ids=["30 digits", "5000 digits"])
async def test_a_last_event_id_past_any_position_resumes_after_everything(
    manual_async_client: anthropic.AsyncAnthropic,
    manual_http: httpx.AsyncClient,
    producer: InProcessWorker,
    last_event_id: str,
    via_fastapi: bool,
) -> None:
    session_id = await finished_turn(manual_async_client, producer)
    extra = {"content": b" "} if via_fastapi else {}
    path = f"/v1/sessions/{session_id}/events/stream"
    async with manual_http.stream("GET", path, headers={"last-event-id": last_event_id}, **extra) as response:  # type: ignore[arg-type]
        assert response.status_code == 200
        frames = await read_until(sse_frames(response), lambda f: f.is_heartbeat, TIMEOUT)
    assert len(frames) == 1 and frames[0].is_heartbeat  # nothing to replay, and the stream lives


@pytest.mark.parametrize("via_fastapi", [False, True])
async def test_a_last_event_id_of_other_digits_is_an_id_not_a_position(
    manual_async_client: anthropic.AsyncAnthropic,
    manual_http: httpx.AsyncClient,
    producer: InProcessWorker,
    via_fastapi: bool,
) -> None:
    session_id = await finished_turn(manual_async_client, producer)
    extra = {"content": b" "} if via_fastapi else {}
    path = f"/v1/sessions/{session_id}/events/stream"
    # `²` (the byte 0xb2, read as latin-1) is a digit to str.isdigit, not to int(): no event has
    # that id, so the replay rule applies.
    headers = {"last-event-id": "²".encode("latin-1")}
    async with manual_http.stream("GET", path, headers=headers, **extra) as response:  # type: ignore[arg-type]
        assert response.status_code == 200
        frames = await read_until(sse_frames(response), is_idle_frame, TIMEOUT)
    history = [e.id async for e in manual_async_client.beta.sessions.events.list(session_id)]
    assert [f.id for f in frames if not f.is_heartbeat] == history
