"""The ModelClient seam against the offline model over real HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from app.agent_loop.anthropic_client import AnthropicModelClient
from app.agent_loop.model_client import (
    Message,
    MessageComplete,
    ModelClient,
    ModelConnectionError,
    ModelError,
    ModelEvent,
    ModelOverloaded,
    ModelRateLimited,
    ModelRequest,
    ModelRequestFailed,
    ModelServerError,
    RetryableModelError,
    TextDelta,
    TextStart,
    ThinkingConfig,
    ThinkingStart,
    ToolUseComplete,
    complete,
)
from app.config import Settings
from app.events.types import ContentBlock
from app.offline.client import OfflineModelClient
from app.worker.runtime import create_model_client
from tests.agent_loop.conftest import MODEL, WEATHER_TOOL, OfflineServer


@pytest.fixture
async def client(offline_server: OfflineServer) -> AsyncIterator[AnthropicModelClient]:
    model_client = AnthropicModelClient(api_key="offline", base_url=offline_server.url)
    yield model_client
    await model_client.aclose()


def request(text: str, **extra: Any) -> ModelRequest:
    return ModelRequest(model=MODEL, messages=[{"role": "user", "content": text}], max_tokens=4096, **extra)


async def collect(client: ModelClient, model_request: ModelRequest) -> list[ModelEvent]:
    async with client.stream(model_request) as events:
        return [event async for event in events]


async def test_text_stream_events_then_final_message(client: AnthropicModelClient) -> None:
    events = await collect(client, request("/long 200\nhello"))
    assert events[0] == TextStart(index=0)
    deltas = [event.text for event in events if isinstance(event, TextDelta)]
    final = events[-1]
    assert isinstance(final, MessageComplete) and len(deltas) > 1
    assert "".join(deltas) == final.text and len(final.text) == 200
    assert final.content == [{"type": "text", "text": final.text}]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens == 50


async def test_tool_use_events_carry_parsed_input(client: AnthropicModelClient) -> None:
    prompt = '/tool get_weather {"city": "Paris"}\n/tool get_weather {"city": "Oslo"}'
    events = await collect(client, request(prompt, tools=[WEATHER_TOOL]))
    calls = [event for event in events if isinstance(event, ToolUseComplete)]
    assert [(call.index, call.name, call.input) for call in calls] == [
        (0, "get_weather", {"city": "Paris"}),
        (1, "get_weather", {"city": "Oslo"}),
    ]
    final = events[-1]
    assert isinstance(final, MessageComplete) and final.stop_reason == "tool_use"
    assert [block["id"] for block in final.tool_uses] == [call.id for call in calls]


async def test_final_content_can_be_sent_back_as_the_assistant_turn(client: AnthropicModelClient) -> None:
    thinking: ThinkingConfig = {"type": "enabled", "budget_tokens": 2048}
    prompt = "/think\n/say Checking.\n/tool get_weather {}"
    first_request = request(prompt, tools=[WEATHER_TOOL], thinking=thinking)
    events = await collect(client, first_request)
    assert ThinkingStart(index=0) in events and TextStart(index=1) in events
    first = events[-1]
    assert isinstance(first, MessageComplete)
    assert first.content[0]["type"] == "thinking" and first.content[0]["signature"]
    result: ContentBlock = {
        "type": "tool_result",
        "tool_use_id": first.tool_uses[0]["id"],
        "content": "rainy",
    }
    history: list[Message] = [*first_request.messages, {"role": "assistant", "content": first.content}]
    second_request = ModelRequest(
        model=MODEL,
        messages=[*history, {"role": "user", "content": [result]}],
        max_tokens=4096,
        tools=[WEATHER_TOOL],
        thinking=thinking,
    )
    second = await complete(client, second_request)
    assert second.text == "Tool results:\nrainy"


async def test_usage_reports_cache_reads_and_writes(client: AnthropicModelClient) -> None:
    system = [{"type": "text", "text": "model client cache " * 40}]
    cached = request("cache me please", system=system, cache_control={"type": "ephemeral"})
    first = await complete(client, cached)
    second = await complete(client, cached)
    assert first.usage.cache_creation_input_tokens == first.usage.cache_creation_5m_input_tokens == 194
    assert second.usage.cache_read_input_tokens == 194 and second.usage.cache_creation_input_tokens == 0


async def test_count_tokens(client: AnthropicModelClient) -> None:
    assert await client.count_tokens(request("x" * 40, system=[{"type": "text", "text": "y" * 8}])) == 12


@pytest.mark.parametrize(
    ("directive", "error_class", "status"),
    [
        ("/fault overloaded", ModelOverloaded, 529),
        ("/fault rate_limited 1 3", ModelRateLimited, 429),
        ("/fault server_error", ModelServerError, 500),
        ("/fault stream_overloaded", ModelOverloaded, 529),
        ("/fault invalid", ModelRequestFailed, 400),
    ],
)
async def test_errors_are_mapped(
    client: AnthropicModelClient, directive: str, error_class: type[ModelError], status: int
) -> None:
    with pytest.raises(error_class) as failure:
        await collect(client, request(f"{directive}\n/long 100"))
    assert failure.value.status == status and failure.value.message
    assert isinstance(failure.value, RetryableModelError) == (error_class is not ModelRequestFailed)
    if error_class is ModelRateLimited:
        assert failure.value.retry_after == 3  # type: ignore[attr-defined]


async def test_a_cut_stream_is_a_connection_error(client: AnthropicModelClient) -> None:
    seen: list[ModelEvent] = []
    with pytest.raises(ModelConnectionError):
        async with client.stream(request("/fault cut\n/long 100")) as events:
            async for event in events:
                seen.append(event)
    assert seen[:2] == [TextStart(index=0), TextDelta(index=0, text="offline filler text offl")]


async def test_an_unreachable_server_is_a_connection_error() -> None:
    unreachable = AnthropicModelClient(api_key="x", base_url="http://127.0.0.1:9", timeout_seconds=5)
    try:
        with pytest.raises(ModelConnectionError):
            await collect(unreachable, request("hello"))
    finally:
        await unreachable.aclose()


async def test_retrying_the_same_request_gets_past_a_fault(client: AnthropicModelClient) -> None:
    faulty = request("/fault overloaded 2\nsecond time lucky")
    for _ in range(2):
        with pytest.raises(ModelOverloaded):
            await complete(client, faulty)
    assert (await complete(client, faulty)).text == 'Offline model reply to: "second time lucky"'


async def _wait_for(condition: Any, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_cancelling_the_task_closes_the_stream(
    client: AnthropicModelClient, offline_server: OfflineServer
) -> None:
    state = offline_server.state
    disconnects = state.client_disconnects
    first_delta = asyncio.Event()

    async def consume() -> None:
        async with client.stream(request("/sleep 20000\n/long 2000")) as events:
            async for event in events:
                if isinstance(event, TextDelta):
                    first_delta.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first_delta.wait(), timeout=10)
    started = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await _wait_for(lambda: state.client_disconnects == disconnects + 1 and state.streams_open == 0)
    assert time.monotonic() - started < 5  # the 20 s response was abandoned, not drained


async def test_leaving_the_context_early_closes_the_stream(
    client: AnthropicModelClient, offline_server: OfflineServer
) -> None:
    state = offline_server.state
    disconnects = state.client_disconnects
    async with client.stream(request("/sleep 20000\n/long 2000\nbreak early")) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                break
    await _wait_for(lambda: state.client_disconnects == disconnects + 1 and state.streams_open == 0)


def _settings(**values: Any) -> Settings:
    return Settings.model_validate({"anthropic_api_key": None, "anthropic_base_url": None, **values})


async def test_create_model_client_offline_runs_the_model_in_process() -> None:
    model_client = create_model_client(_settings(model_backend="auto"))
    assert isinstance(model_client, OfflineModelClient)
    try:
        assert (await complete(model_client, request("via factory"))).text.endswith('"via factory"')
    finally:
        await model_client.aclose()


async def test_create_model_client_anthropic_uses_its_endpoint(offline_server: OfflineServer) -> None:
    settings = _settings(anthropic_api_key="sk-test", anthropic_base_url=offline_server.url)
    assert settings.resolved_model_backend() == "anthropic"
    model_client = create_model_client(settings)
    try:
        assert (await complete(model_client, request("via gateway"))).text.endswith('"via gateway"')
    finally:
        await model_client.aclose()
