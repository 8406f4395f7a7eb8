"""The Messages API request and reply as the offline model reads and writes them, typed.

TypedDicts, so the engine still works on the JSON it was sent (the request key hashes it as it
came) and answers plain dicts. A body is a ``MessagesBody`` once ``request.request_problem`` found
nothing wrong with it; only the keys the engine reads are named.
"""

from __future__ import annotations

from typing import Literal, Required

from typing_extensions import TypedDict

from app.events.types import StopDetails
from app.shared.content import CacheControl, ContentBlock, ToolDefinition


class MessageParam(TypedDict):
    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]


class ThinkingParam(TypedDict, total=False):
    type: Required[str]
    budget_tokens: int


class MessagesBody(TypedDict, total=False):
    model: Required[str]
    messages: Required[list[MessageParam]]
    max_tokens: int
    system: str | list[ContentBlock]
    tools: list[ToolDefinition]
    thinking: ThinkingParam
    cache_control: CacheControl
    stream: bool


class CacheCreation(TypedDict):
    ephemeral_5m_input_tokens: int
    ephemeral_1h_input_tokens: int


class OfflineUsage(TypedDict):
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int
    cache_creation: CacheCreation
    service_tier: str


class OfflineMessage(TypedDict):
    """The reply (``message_start`` carries it with no content and no stop reason yet)."""

    id: str
    type: Literal["message"]
    role: Literal["assistant"]
    model: str
    content: list[ContentBlock]
    stop_reason: str | None
    stop_sequence: str | None
    stop_details: StopDetails | None
    usage: OfflineUsage


class BlockDelta(TypedDict, total=False):
    """A ``content_block_delta``'s ``delta`` (text, thinking, signature or tool input JSON)."""

    type: Required[str]
    text: str
    thinking: str
    signature: str
    partial_json: str
