"""Reading session streams in tests, always with a deadline: through the SDK, or raw SSE over httpx."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

E = TypeVar("E")
# How long a wait may take before the test fails instead of hanging. Not a speed bound: it is
# generous because the shared 2-core machines run several suites at once (30 s was seen to flake).
TIMEOUT = 120.0


def is_idle(event: Any) -> bool:
    return getattr(event, "type", None) == "session.status_idle"


async def read_until(stream: AsyncIterable[E], stop: Callable[[E], bool], within: float = TIMEOUT) -> list[E]:
    """Events up to and including the first `stop` event, or up to the end of the stream."""
    out: list[E] = []
    async with asyncio.timeout(within):
        async for event in stream:
            out.append(event)
            if stop(event):
                break
    return out


async def read_turn(stream: AsyncIterable[E], within: float = TIMEOUT) -> list[E]:
    """What a client of the SDK examples reads: everything up to `session.status_idle`."""
    events = await read_until(stream, is_idle, within)
    assert events and is_idle(events[-1]), f"the stream ended before session.status_idle: {events}"
    return events


def ids(events: list[Any]) -> list[str]:
    return [e.id if hasattr(e, "id") else e["id"] for e in events]


@dataclass
class Frame:
    """One raw SSE frame; a heartbeat may be a comment-only frame or `event: ping`."""

    event: str | None = None
    data: list[str] = field(default_factory=list)
    id: str | None = None
    comments: list[str] = field(default_factory=list)

    @property
    def json(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads("\n".join(self.data))
        return value

    @property
    def is_heartbeat(self) -> bool:
        return self.event == "ping" or (self.event is None and not self.data and bool(self.comments))


async def sse_frames(response: httpx.Response) -> AsyncIterator[Frame]:
    """Split a text/event-stream body into frames (WHATWG rules, enough for these tests)."""
    frame = Frame()
    async for line in response.aiter_lines():
        if line == "":
            if frame.event or frame.data or frame.comments:
                yield frame
            frame = Frame()
        elif line.startswith(":"):
            frame.comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                frame.event = value
            elif name == "data":
                frame.data.append(value)
            elif name == "id":
                frame.id = value
    if frame.event or frame.data or frame.comments:
        yield frame


def is_idle_frame(frame: Frame) -> bool:
    return frame.event == "session.status_idle"
