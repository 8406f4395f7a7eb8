"""The one seam between the agent loop and a model: request, stream events, errors, protocol.

The loop builds a `ModelRequest`, opens `client.stream(request)` and reads `ModelEvent`s until a
`MessageComplete`. Everything here is SDK-independent so the loop never sees `anthropic` types;
the SDK-backed implementation lives in `anthropic_client.py` (real API and offline model alike).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Literal, NotRequired, Protocol, TypeAlias

from pydantic import JsonValue
from typing_extensions import TypedDict

from app.events.types import CacheControl, ContentBlock, StopDetails
from app.shared.content import ToolDefinition


class Message(TypedDict):
    """One turn of a request's conversation."""

    role: Literal["user", "assistant"]
    content: str | list[ContentBlock]  # a string: one text block


class ThinkingConfig(TypedDict):
    type: Literal["enabled", "disabled"]
    budget_tokens: NotRequired[int]


class ToolChoice(TypedDict):
    type: Literal["auto", "any", "tool", "none"]
    name: NotRequired[str]
    disable_parallel_tool_use: NotRequired[bool]


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One Messages API request. Blocks are Anthropic message params as plain dicts.

    `cache_control` is the top-level automatic breakpoint (e.g. ``{"type": "ephemeral"}``); callers
    may also place block-level ``cache_control`` in `system`, `tools` or `messages` themselves.
    """

    model: str
    messages: list[Message]
    max_tokens: int
    system: list[ContentBlock] = field(default_factory=list)
    tools: list[ToolDefinition] = field(default_factory=list)
    thinking: ThinkingConfig | None = None
    cache_control: CacheControl | None = None
    tool_choice: ToolChoice | None = None
    metadata: dict[str, str] | None = None

    def to_params(self) -> dict[str, Any]:  # JSON boundary: the Messages API request body
        """The request body (minus `stream`), omitting unset optional fields as the API expects."""
        params: dict[str, Any] = {  # JSON boundary: the request body, as the HTTP client sends it
            "model": self.model,
            "messages": self.messages,
            "max_tokens": self.max_tokens,
        }
        optional = {
            "system": self.system or None,
            "tools": self.tools or None,
            "thinking": self.thinking,
            "cache_control": self.cache_control,
            "tool_choice": self.tool_choice,
            "metadata": self.metadata,
        }
        params.update({key: value for key, value in optional.items() if value is not None})
        return params


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """Token usage of one response; cache writes are split by TTL like the API's `cache_creation`."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_creation_5m_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0


@dataclass(frozen=True, slots=True)
class TextStart:
    """A text block opened at `index`: the loop may announce an `agent.message` (`event_start`)."""

    index: int


@dataclass(frozen=True, slots=True)
class TextDelta:
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingStart:
    """A thinking (or redacted thinking) block opened; its content never leaves the loop."""

    index: int


@dataclass(frozen=True, slots=True)
class ToolUseComplete:
    """A fully streamed tool_use block with its parsed input."""

    index: int
    id: str
    name: str
    input: dict[str, JsonValue]  # a tool\'s input, chosen by the model


@dataclass(frozen=True, slots=True)
class MessageComplete:
    """The final message: `content` blocks are dicts ready to be sent back as the assistant turn."""

    message_id: str
    model: str
    content: list[ContentBlock]
    stop_reason: str
    usage: ModelUsage
    stop_details: StopDetails | None = None
    """With ``stop_reason: refusal``: ``{"type": "refusal", "category", "explanation"}``."""

    @property
    def text(self) -> str:
        return "".join(block["text"] for block in self.content if block.get("type") == "text")

    @property
    def tool_uses(self) -> list[ContentBlock]:
        return [block for block in self.content if block.get("type") == "tool_use"]


ModelEvent: TypeAlias = TextStart | TextDelta | ThinkingStart | ToolUseComplete | MessageComplete


class ModelError(Exception):
    """A model request failed. `error_type` is the API's error type when the server sent one."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.error_type = error_type
        self.request_id = request_id


class RetryableModelError(ModelError):
    """Transient: the loop backs off (honouring `retry_after` when the server gave one) and retries."""

    retry_after: float | None = None


class ModelOverloaded(RetryableModelError):
    """529 overloaded_error (also when it arrives as an `error` event mid-stream)."""


class ModelRateLimited(RetryableModelError):
    """429 rate_limit_error."""


class ModelServerError(RetryableModelError):
    """5xx api_error / timeout_error."""


class ModelConnectionError(RetryableModelError):
    """No usable response: connection refused or reset, timeout, or a stream cut before message_stop."""


class ModelRequestFailed(ModelError):
    """Any other 4xx (invalid request, auth, permission, too large): retrying cannot help."""


def error_class_for(status: int) -> type[ModelError]:
    """The loop's error class for an HTTP status of the Messages API."""
    if status == 529:
        return ModelOverloaded
    if status == 429:
        return ModelRateLimited
    if status == 408:
        return ModelConnectionError
    if status >= 500:
        return ModelServerError
    return ModelRequestFailed


class ModelClient(Protocol):
    """What the agent loop needs from a model backend."""

    def stream(self, request: ModelRequest) -> AbstractAsyncContextManager[AsyncIterator[ModelEvent]]:
        """Open a streaming request. Leaving the context (or cancelling the task) closes the HTTP
        response at once; errors surface as `ModelError` subclasses, on enter or while iterating."""
        ...

    async def count_tokens(self, request: ModelRequest) -> int:
        """Input tokens the request would use (`/v1/messages/count_tokens`)."""
        ...

    async def aclose(self) -> None: ...


async def complete(client: ModelClient, request: ModelRequest) -> MessageComplete:
    """Run a request to the end and return only its final message (e.g. a compaction summary)."""
    async with client.stream(request) as events:
        async for event in events:
            if isinstance(event, MessageComplete):
                return event
    raise ModelConnectionError("the model stream ended without a final message")
