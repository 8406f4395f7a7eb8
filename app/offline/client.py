"""The offline model in process: a `ModelClient` that asks the engine directly, so a worker needs
no API process (and no loopback HTTP) to run turns offline.

It replays the very frames `POST /v1/messages` would stream (``sse.message_frames``), with the
same pacing (``/sleep`` spread over the deltas) and the same faults: engine errors become the
`ModelError` their status stands for, ``cut`` drops the stream after its first delta, and
``stream_overloaded`` fails it there as an overloaded error. The HTTP endpoint stays for users
who point their own code at the offline model.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

from pydantic import JsonValue

from app.agent_loop.model_client import (
    MessageComplete,
    ModelConnectionError,
    ModelError,
    ModelEvent,
    ModelOverloaded,
    ModelRequest,
    ModelUsage,
    RetryableModelError,
    TextDelta,
    TextStart,
    ThinkingStart,
    ToolUseComplete,
    error_class_for,
)
from app.events.types import ContentBlock, StopDetails
from app.offline.engine import OfflineEngine, OfflineError, OfflineReply
from app.offline.messages import OfflineMessage
from app.offline.sse import Frame, message_frames


class OfflineModelClient:
    def __init__(self, engine: OfflineEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def stream(self, request: ModelRequest) -> AsyncIterator[AsyncIterator[ModelEvent]]:
        reply = self._respond({**_as_json(request.to_params()), "stream": True})
        events = _events(reply)
        try:
            yield events
        finally:
            await events.aclose()

    async def count_tokens(self, request: ModelRequest) -> int:
        try:
            return self.engine.count_tokens(_as_json(request.to_params()))
        except OfflineError as exc:
            raise _model_error(exc) from exc

    async def aclose(self) -> None:
        return None

    def _respond(self, body: dict[str, JsonValue]) -> OfflineReply:
        try:
            return self.engine.respond(body)
        except OfflineError as exc:
            raise _model_error(exc) from exc


def _as_json(params: dict[str, Any]) -> dict[str, JsonValue]:  # JSON boundary: a request body
    """The request exactly as the engine would receive it over HTTP."""
    parsed: dict[str, JsonValue] = json.loads(json.dumps(params))
    return parsed


def _model_error(exc: OfflineError) -> ModelError:
    error = error_class_for(exc.status)(exc.message, status=exc.status, error_type=exc.error_type)
    if isinstance(error, RetryableModelError) and exc.retry_after is not None:
        error.retry_after = float(exc.retry_after)
    return error


async def _events(reply: OfflineReply) -> AsyncGenerator[ModelEvent, None]:
    frames = list(message_frames(reply.message))
    deltas = sum(frame.is_delta for frame in frames)
    await asyncio.sleep(0 if deltas else reply.sleep_ms / 1000)
    for frame in frames:
        if frame.is_delta:
            await asyncio.sleep(reply.sleep_ms / 1000 / deltas)
        event = _translate(frame, reply.message)
        if event is not None:
            yield event
        if frame.is_delta and reply.stream_fault == "cut":
            raise ModelConnectionError("model connection failed: stream cut (offline fault injection)")
        if frame.is_delta and reply.stream_fault == "stream_overloaded":
            raise ModelOverloaded(
                "Overloaded (offline fault injection).", status=529, error_type="overloaded_error"
            )


def _translate(frame: Frame, message: OfflineMessage) -> ModelEvent | None:
    data: dict[str, Any] = frame.data  # JSON boundary: a stream event
    kind = data["type"]
    if kind == "content_block_start":
        block_type = data["content_block"]["type"]
        if block_type == "text":
            return TextStart(index=data["index"])
        if block_type in ("thinking", "redacted_thinking"):
            return ThinkingStart(index=data["index"])
    elif kind == "content_block_delta" and data["delta"]["type"] == "text_delta":
        return TextDelta(index=data["index"], text=data["delta"]["text"])
    elif kind == "content_block_stop":
        block = message["content"][data["index"]]
        if block.get("type") == "tool_use":
            return ToolUseComplete(
                index=data["index"], id=block["id"], name=block["name"], input=block["input"]
            )
    elif kind == "message_stop":
        return _final(message)
    return None


def _final(message: OfflineMessage) -> MessageComplete:
    usage = message["usage"]
    breakdown = usage.get("cache_creation")
    details = message.get("stop_details")
    refusal: StopDetails | None = (
        {"type": "refusal", "category": details.get("category"), "explanation": details.get("explanation")}
        if details
        else None
    )
    return MessageComplete(
        message_id=message["id"],
        model=message["model"],
        content=[_block(block) for block in message["content"]],
        stop_reason=message["stop_reason"] or "end_turn",
        usage=ModelUsage(
            input_tokens=usage["input_tokens"],
            output_tokens=usage["output_tokens"],
            cache_read_input_tokens=usage.get("cache_read_input_tokens") or 0,
            cache_creation_input_tokens=usage.get("cache_creation_input_tokens") or 0,
            cache_creation_5m_input_tokens=breakdown.get("ephemeral_5m_input_tokens", 0) if breakdown else 0,
            cache_creation_1h_input_tokens=breakdown.get("ephemeral_1h_input_tokens", 0) if breakdown else 0,
        ),
        stop_details=refusal,
    )


def _block(block: ContentBlock) -> ContentBlock:
    """A response block without its null fields (each has its `type`)."""
    return cast(ContentBlock, {k: v for k, v in block.items() if v is not None})
