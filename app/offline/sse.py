"""A finished message as the Messages API's server-sent events, in the real order and shapes.

message_start, ping, then per block content_block_start / content_block_delta* /
content_block_stop, then message_delta (stop_reason, cumulative usage) and message_stop.
Text, thinking and tool input are split into several deltas so a client sees a real stream.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.offline.messages import BlockDelta, OfflineMessage, OfflineUsage
from app.shared.content import ContentBlock

CHUNK_CHARS = 24
MAX_CHUNKS_PER_BLOCK = 100  # a /long reply still streams in a bounded number of events


@dataclass(frozen=True, slots=True)
class Frame:
    event: str
    data: dict[str, Any]  # JSON boundary: a stream event as sent

    @property
    def is_delta(self) -> bool:
        return self.event == "content_block_delta"

    def encode(self) -> bytes:
        return f"event: {self.event}\ndata: {json.dumps(self.data, separators=(',', ':'))}\n\n".encode()


def message_frames(message: OfflineMessage) -> Iterator[Frame]:
    yield Frame("message_start", {"type": "message_start", "message": _started(message)})
    yield Frame("ping", {"type": "ping"})
    for index, block in enumerate(message["content"]):
        yield from _block_frames(index, block)
    usage = message["usage"]
    delta_usage = {
        key: value for key, value in usage.items() if key not in ("cache_creation", "service_tier")
    }
    delta = {
        "stop_reason": message["stop_reason"],
        "stop_sequence": message["stop_sequence"],
        "stop_details": message.get("stop_details"),
    }
    yield Frame("message_delta", {"type": "message_delta", "delta": delta, "usage": delta_usage})
    yield Frame("message_stop", {"type": "message_stop"})


def error_frame(error_type: str, message: str, request_id: str) -> Frame:
    body = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
    return Frame("error", body)


def chunks(text: str) -> list[str]:
    if not text:
        return []
    size = max(CHUNK_CHARS, math.ceil(len(text) / MAX_CHUNKS_PER_BLOCK))
    return [text[start : start + size] for start in range(0, len(text), size)]


def _started(message: OfflineMessage) -> OfflineMessage:
    # Like the API: no content or stop_reason yet, and output tokens only as a placeholder.
    usage: OfflineUsage = {**message["usage"], "output_tokens": 1}
    started: OfflineMessage = {
        **message,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": usage,
    }
    return {**started, "stop_details": None}


def _block_frames(index: int, block: ContentBlock) -> Iterator[Frame]:
    start, deltas = _split_block(block)
    yield Frame(
        "content_block_start", {"type": "content_block_start", "index": index, "content_block": start}
    )
    for delta in deltas:
        yield Frame("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
    yield Frame("content_block_stop", {"type": "content_block_stop", "index": index})


def _split_block(block: ContentBlock) -> tuple[ContentBlock, list[BlockDelta]]:
    kind = block.get("type")
    if kind == "text":
        return {"type": "text", "text": ""}, [
            {"type": "text_delta", "text": c} for c in chunks(block["text"])
        ]
    if kind == "thinking":
        deltas: list[BlockDelta] = [
            {"type": "thinking_delta", "thinking": c} for c in chunks(block["thinking"])
        ]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
        return {"type": "thinking", "thinking": "", "signature": ""}, deltas
    if kind == "tool_use":
        raw_input = json.dumps(block.get("input", {}), separators=(",", ":"))
        json_deltas: list[BlockDelta] = [
            {"type": "input_json_delta", "partial_json": c} for c in chunks(raw_input)
        ]
        return {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}, json_deltas
    # Any other scripted block (e.g. redacted_thinking) arrives whole, as the API sends it.
    return block.copy(), []
