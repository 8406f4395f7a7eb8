"""Shapes of the Messages API that several packages pass on: a content block as the API, the
sandbox's tools, MCP servers and session events carry it (the SDK's wide union, flattened into
one ``TypedDict``), and a tool definition. Here, below every package that uses them."""

from __future__ import annotations

from typing import Any, Literal, NotRequired, Required

from pydantic import ConfigDict, JsonValue, with_config
from typing_extensions import TypedDict


@with_config(ConfigDict(extra="allow"))
class ContentBlock(TypedDict, total=False):
    """A content block as events and the Messages API carry it (text, image, document, thinking,
    tool use and result, server tool blocks, ...): the SDK's wide union, flattened. Only ``type``
    is always there; other kinds' keys are allowed through (the client params in
    ``events.schemas`` and the SDK check in the tests hold each kind to its shape)."""

    type: Required[str]
    text: str
    thinking: str
    signature: str
    data: str
    id: str
    name: str
    input: dict[str, JsonValue]  # a tool\'s input, chosen by the model
    tool_use_id: str
    content: str | list[ContentBlock] | ContentBlock  # a tool result's output; a fetched document
    is_error: bool
    source: Any  # an image's or document's source object, or a search result's URL
    title: str | None
    context: str | None
    citations: Any  # the SDK's citation union, or a search result's ``{"enabled": ...}``
    cache_control: CacheControl
    # server tool results (web search, web fetch)
    url: str
    page_age: str | None
    encrypted_content: str
    error_code: str
    retrieved_at: str | None


@with_config(ConfigDict(extra="forbid"))
class CacheControl(TypedDict):
    type: Literal["ephemeral"]
    ttl: NotRequired[str]


class ToolDefinition(TypedDict, total=False):
    """A tool offered in a Messages API request: a client tool (``name``, ``description``,
    ``input_schema``) or a server tool (``type``, ``name`` and its own settings)."""

    name: Required[str]
    type: str
    description: str
    input_schema: dict[str, Any]  # JSON boundary: a JSON schema
    cache_control: CacheControl
    # server tools (web search)
    max_uses: int
    allowed_domains: list[str]
    blocked_domains: list[str]
