"""The in-process offline client gives the loop what the offline model over HTTP gives it:
the same events, the same final message, the same errors (with the real SDK on the HTTP side)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.agent_loop.anthropic_client import AnthropicModelClient
from app.agent_loop.model_client import (
    MessageComplete,
    ModelClient,
    ModelConnectionError,
    ModelError,
    ModelEvent,
    ModelOverloaded,
    ModelRateLimited,
    ModelRequest,
    ModelRequestFailed,
    TextDelta,
)
from app.offline.client import OfflineModelClient
from app.offline.engine import OfflineEngine
from tests.agent_loop.conftest import MODEL, WEATHER_TOOL, OfflineServer

THINKING = {"type": "enabled", "budget_tokens": 2000}
TOOLS = [WEATHER_TOOL]


@pytest.fixture
async def over_http(offline_server: OfflineServer) -> AsyncIterator[AnthropicModelClient]:
    client = AnthropicModelClient(api_key="offline", base_url=offline_server.url)
    yield client
    await client.aclose()


@pytest.fixture
def in_process() -> OfflineModelClient:
    return OfflineModelClient(OfflineEngine())


def request(text: str, **extra: Any) -> ModelRequest:
    return ModelRequest(model=MODEL, messages=[{"role": "user", "content": text}], max_tokens=4096, **extra)


async def collect(client: ModelClient, model_request: ModelRequest) -> list[ModelEvent]:
    async with client.stream(model_request) as events:
        return [event async for event in events]


def comparable(events: list[ModelEvent]) -> list[Any]:
    # Prompt-cache accounting is per engine: the HTTP server's has seen other tests' prompts.
    return [
        (e.message_id, e.content, e.stop_reason, e.stop_details) if isinstance(e, MessageComplete) else e
        for e in events
    ]


@pytest.mark.parametrize(
    ("text", "extra"),
    [
        ("hello there", {}),
        ("/long 500", {}),
        ('/say checking\n/tool get_weather {"city": "Paris"}\n/tool get_weather {}', {"tools": TOOLS}),
        ("/think\nponder this", {"thinking": THINKING}),
        ("/refuse cyber", {}),
    ],
)
async def test_same_events_as_over_http(
    over_http: AnthropicModelClient, in_process: OfflineModelClient, text: str, extra: dict[str, Any]
) -> None:
    model_request = request(f"{text}\n(case {json.dumps(text)})", **extra)
    http_events = await collect(over_http, model_request)
    local_events = await collect(in_process, model_request)

    assert comparable(local_events) == comparable(http_events)
    assert isinstance(local_events[-1], MessageComplete)
    assert local_events[-1].usage.output_tokens == http_events[-1].usage.output_tokens  # type: ignore[union-attr]
    assert await in_process.count_tokens(model_request) == await over_http.count_tokens(model_request)


@pytest.mark.parametrize(
    ("fault", "error_class"),
    [
        ("overloaded", ModelOverloaded),
        ("rate_limited 1 7", ModelRateLimited),
        ("invalid", ModelRequestFailed),
        ("cut", ModelConnectionError),
        ("stream_overloaded", ModelOverloaded),
    ],
)
async def test_same_errors_as_over_http(
    over_http: AnthropicModelClient, in_process: OfflineModelClient, fault: str, error_class: type[ModelError]
) -> None:
    model_request = request(f"/fault {fault}\n/long 300\nfault case {fault}")
    for client in (over_http, in_process):
        with pytest.raises(error_class) as exc:
            await collect(client, model_request)
        if fault.startswith("rate_limited"):
            assert exc.value.retry_after == 7  # type: ignore[attr-defined]


async def test_sleep_is_spread_over_the_deltas(in_process: OfflineModelClient) -> None:
    started = time.monotonic()
    seen: list[float] = []
    async with in_process.stream(request("/sleep 600\n/long 400")) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                seen.append(time.monotonic() - started)
    # Deltas arrive over the whole sleep, not all at the end (no threshold on the total).
    assert len(seen) > 2 and seen[0] < seen[-1]
