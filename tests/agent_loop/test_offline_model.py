"""The offline model over real HTTP, consumed by the unmodified `anthropic` SDK."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anthropic
import httpx
import httpx2
import pytest

from tests.agent_loop.conftest import MODEL, WEATHER_TOOL, OfflineServer, body, user

TOOLS: Any = [WEATHER_TOOL]  # the SDK's ToolParam, as wire JSON


@pytest.fixture(scope="module")
def sdk(offline_server: OfflineServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(
        base_url=offline_server.url, api_key="any-key", max_retries=0, _strict_response_validation=True
    ) as client:
        yield client


@pytest.fixture
async def async_sdk(offline_server: OfflineServer) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(
        base_url=offline_server.url, api_key="any-key", max_retries=0, _strict_response_validation=True
    ) as client:
        yield client


def test_create_returns_a_message(sdk: anthropic.Anthropic) -> None:
    message = sdk.messages.create(model=MODEL, max_tokens=256, messages=[user("hi there")])  # type: ignore[list-item]
    assert message.content[0].type == "text"
    assert message.content[0].text == 'Offline model reply to: "hi there"'
    assert message.stop_reason == "end_turn" and message.usage.output_tokens > 0
    assert message._request_id and message._request_id.startswith("req_")


def test_stream_helpers_yield_the_same_message_as_create(sdk: anthropic.Anthropic) -> None:
    messages: Any = [{"role": "user", "content": "/long 300\nstream me"}]
    with sdk.messages.stream(model=MODEL, max_tokens=1024, messages=messages) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()
    plain = sdk.messages.create(model=MODEL, max_tokens=1024, messages=messages)
    assert len(pieces) > 1 and "".join(pieces) == plain.content[0].text  # type: ignore[union-attr]
    assert final.model_dump(exclude={"usage"}) == plain.model_dump(exclude={"usage"})
    assert final.usage.output_tokens == plain.usage.output_tokens


def test_refuse_directive_answers_with_stop_details(sdk: anthropic.Anthropic) -> None:
    messages: Any = [{"role": "user", "content": "/refuse bio"}]
    plain = sdk.messages.create(model=MODEL, max_tokens=256, messages=messages)
    with sdk.messages.stream(model=MODEL, max_tokens=256, messages=messages) as stream:
        final = stream.get_final_message()

    for message in (plain, final):
        assert message.stop_reason == "refusal"
        assert message.stop_details is not None
        assert message.stop_details.type == "refusal" and message.stop_details.category == "bio"
    assert sdk.messages.create(model=MODEL, max_tokens=256, messages=[user("hi")]).stop_details is None  # type: ignore[list-item]


def test_system_directive_answers_with_the_system_prompt(sdk: anthropic.Anthropic) -> None:
    messages: Any = [{"role": "user", "content": "/system"}]
    system: Any = [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Skills: none."}]
    told = sdk.messages.create(model=MODEL, max_tokens=256, system=system, messages=messages)
    untold = sdk.messages.create(model=MODEL, max_tokens=256, messages=messages)

    assert told.content[0].text == "You are terse.\nSkills: none."  # type: ignore[union-attr]
    assert untold.content[0].text == "(no system prompt)"  # type: ignore[union-attr]


def test_tool_use_round_trip(sdk: anthropic.Anthropic) -> None:
    prompt = '/say Let me check.\n/tool get_weather {"city": "Paris"}'
    history: Any = [{"role": "user", "content": prompt}]
    with sdk.messages.stream(model=MODEL, max_tokens=1024, tools=TOOLS, messages=history) as stream:
        first = stream.get_final_message()
    assert first.stop_reason == "tool_use"
    call = first.content[1]
    assert call.type == "tool_use" and call.name == "get_weather" and call.input == {"city": "Paris"}
    result = {"type": "tool_result", "tool_use_id": call.id, "content": "sunny"}
    history += [{"role": "assistant", "content": first.content}, {"role": "user", "content": [result]}]
    second = sdk.messages.create(model=MODEL, max_tokens=1024, tools=TOOLS, messages=history)
    assert second.content[0].text == "Tool results:\nsunny"  # type: ignore[union-attr]


async def test_async_stream_with_thinking(async_sdk: anthropic.AsyncAnthropic) -> None:
    messages: Any = [{"role": "user", "content": "/think\nponder this"}]
    kinds = []
    async with async_sdk.messages.stream(
        model=MODEL, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048}, messages=messages
    ) as stream:
        async for event in stream:
            kinds.append(event.type)
        final = await stream.get_final_message()
    assert "thinking" in kinds and "signature" in kinds
    thinking = final.content[0]
    assert thinking.type == "thinking" and thinking.signature.startswith("offline-")
    follow_up: Any = [*messages, {"role": "assistant", "content": final.content}, user("thanks")]
    again = await async_sdk.messages.create(
        model=MODEL, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048}, messages=follow_up
    )
    assert again.content[-1].text == 'Offline model reply to: "thanks"'  # type: ignore[union-attr]


def test_cache_usage_is_reported_like_the_api(sdk: anthropic.Anthropic) -> None:
    system: Any = [{"type": "text", "text": "cache me " * 200}]
    messages: Any = [{"role": "user", "content": "cache test one"}]
    first = sdk.messages.create(
        model=MODEL, max_tokens=64, system=system, messages=messages, cache_control={"type": "ephemeral"}
    )
    second = sdk.messages.create(
        model=MODEL, max_tokens=64, system=system, messages=messages, cache_control={"type": "ephemeral"}
    )
    assert first.usage.cache_creation_input_tokens == second.usage.cache_read_input_tokens == 454
    assert first.usage.cache_creation and first.usage.cache_creation.ephemeral_5m_input_tokens == 454


def test_count_tokens(sdk: anthropic.Anthropic) -> None:
    counted = sdk.messages.count_tokens(model=MODEL, messages=[{"role": "user", "content": "x" * 41}])
    assert counted.input_tokens == 11


@pytest.mark.parametrize(
    ("kind", "error_class"),
    [
        ("overloaded", anthropic.OverloadedError),
        ("rate_limited", anthropic.RateLimitError),
        ("server_error", anthropic.InternalServerError),
        ("invalid", anthropic.BadRequestError),
    ],
)
def test_faults_raise_the_sdk_error_classes(
    sdk: anthropic.Anthropic, kind: str, error_class: type[anthropic.APIStatusError]
) -> None:
    with pytest.raises(error_class) as failure:
        sdk.messages.create(model=MODEL, max_tokens=64, messages=[user(f"/fault {kind}")])  # type: ignore[list-item]
    envelope: Any = failure.value.body
    assert failure.value.request_id and envelope["request_id"] == failure.value.request_id


def test_sdk_retries_get_past_a_transient_fault(offline_server: OfflineServer) -> None:
    with anthropic.Anthropic(base_url=offline_server.url, api_key="k", max_retries=2) as retrying:
        message = retrying.messages.create(
            model=MODEL,
            max_tokens=64,
            messages=[user("/fault rate_limited 2\nretry me")],  # type: ignore[list-item]
        )
    assert message.content[0].text == 'Offline model reply to: "retry me"'  # type: ignore[union-attr]


def test_cut_stream_drops_the_connection(sdk: anthropic.Anthropic) -> None:
    messages: Any = [{"role": "user", "content": "/fault cut\n/long 200"}]
    seen: list[str] = []
    with pytest.raises(httpx2.RemoteProtocolError):  # noqa: SIM117
        with sdk.messages.stream(model=MODEL, max_tokens=1024, messages=messages) as stream:
            seen.extend(event.type for event in stream)
    assert "text" in seen and "message_stop" not in seen


def test_cut_non_streaming_response_is_a_connection_error(sdk: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.APIConnectionError):
        sdk.messages.create(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "/fault cut"}])


def test_overloaded_error_event_mid_stream(sdk: anthropic.Anthropic) -> None:
    messages: Any = [{"role": "user", "content": "/fault stream_overloaded\n/long 200"}]
    with pytest.raises(anthropic.APIStatusError) as failure:  # noqa: SIM117
        with sdk.messages.stream(model=MODEL, max_tokens=1024, messages=messages) as stream:
            stream.until_done()
    assert failure.value.type == "overloaded_error"


def test_raw_sse_matches_the_api_wire_format(offline_server: OfflineServer) -> None:
    request = body(user("/tool get_weather {}"), tools=[WEATHER_TOOL], stream=True)
    with httpx.stream("POST", f"{offline_server.url}/v1/messages", json=request, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line]
    events = [line.removeprefix("event: ") for line in lines if line.startswith("event: ")]
    assert events == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    data = [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]
    assert all(item["type"] == name for item, name in zip(data, events, strict=True))


@pytest.mark.parametrize(
    "payload",
    [
        b"{not json",
        b"[]",
        json.dumps({"model": MODEL, "messages": [user("x")]}).encode(),
        # Malformed parts the engine would otherwise trip over (issue 8, item 9).
        json.dumps(body(user("x"), tools=[1])).encode(),
        json.dumps(body({"role": "user", "content": [1]})).encode(),
        json.dumps(body(user("x"), system=[1])).encode(),
        json.dumps(body({"role": "user", "content": [{"type": "text", "text": "x"}, "x"]})).encode(),
        json.dumps({**body(user("x")), "max_tokens": "10"}).encode(),
        b'{"model":"m","max_tokens":10,"messages":' + b"[" * 5000 + b"]" * 5000 + b"}",
    ],
)
def test_invalid_requests_get_the_error_envelope(offline_server: OfflineServer, payload: bytes) -> None:
    response = httpx.post(f"{offline_server.url}/v1/messages", content=payload, timeout=10)
    assert response.status_code == 400
    envelope = response.json()
    assert envelope["type"] == "error" and envelope["error"]["type"] == "invalid_request_error"
    assert envelope["request_id"] == response.headers["request-id"]
