"""The shape of a Messages API request, as far as the offline model reads it.

Checked before the engine looks at anything, so a malformed request (``"tools": [1]``, a message
block that is not an object) is a 400 in the API's words rather than a crash deep in the engine.
Unknown fields are allowed, as the real API's optional parameters vary by version.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue, StrictInt, ValidationError


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class Block(_Open):
    type: str
    cache_control: dict[str, JsonValue] | None = None


class Message(_Open):
    role: Literal["user", "assistant"]
    content: str | list[Block]


class Tool(_Open):
    name: str = Field(min_length=1)
    cache_control: dict[str, JsonValue] | None = None


class MessagesRequest(_Open):
    model: str = Field(min_length=1)
    max_tokens: StrictInt | None = Field(None, ge=1)
    messages: list[Message] = Field(min_length=1)
    system: str | list[Block] | None = None
    tools: list[Tool] | None = None
    tool_choice: dict[str, JsonValue] | None = None
    thinking: dict[str, JsonValue] | None = None
    cache_control: dict[str, JsonValue] | None = None
    metadata: dict[str, JsonValue] | None = None
    stop_sequences: list[str] | None = None
    stream: bool | None = None


def request_problem(
    body: dict[str, JsonValue],  # the raw request, checked here
    *,
    needs_max_tokens: bool,
) -> str | None:
    """The API-style message for the first problems of ``body``, or None when it is well formed."""
    try:
        MessagesRequest.model_validate(body)
    except ValidationError as exc:
        return "; ".join(_describe(err) for err in exc.errors()[:3])
    if needs_max_tokens and body.get("max_tokens") is None:
        return "max_tokens: Field required (an integer >= 1)"
    return None


def _describe(err: Any) -> str:
    where = ".".join(str(part) for part in err.get("loc", ()) if not _is_union_tag(part)) or "request"
    return f"{where}: {err.get('msg', 'invalid value')}"


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and (part.startswith(("list[", "str", "function-")) or "[" in part)
