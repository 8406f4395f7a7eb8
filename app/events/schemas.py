"""Client event params (what `POST /v1/sessions/{id}/events` accepts) and their validation."""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from app.events.types import EventRecord, event_types


class _Strict(BaseModel):
    model_config = ConfigDict(extra="ignore")


class TextBlock(_Strict):
    type: Literal["text"]
    text: str


class Base64Source(_Strict):
    type: Literal["base64"]
    media_type: str
    data: str


class UrlSource(_Strict):
    type: Literal["url"]
    url: str


class FileSource(_Strict):
    type: Literal["file"]
    file_id: str


class PlainTextSource(_Strict):
    type: Literal["text"]
    media_type: Literal["text/plain"] = "text/plain"
    data: str


ImageSource = Annotated[Base64Source | UrlSource | FileSource, Field(discriminator="type")]
DocumentSource = Annotated[
    Base64Source | UrlSource | FileSource | PlainTextSource, Field(discriminator="type")
]


class ImageBlock(_Strict):
    type: Literal["image"]
    source: ImageSource


class DocumentBlock(_Strict):
    type: Literal["document"]
    source: DocumentSource
    title: str | None = None
    context: str | None = None


class RedactedBlock(_Strict):
    type: Literal["redacted"]


class SearchResultBlock(_Strict):
    type: Literal["search_result"]
    source: str
    title: str
    content: list[TextBlock]
    citations: dict[str, Any] | None = None  # JSON boundary: the client's citations setting, passed on


MessageBlock = Annotated[TextBlock | ImageBlock | DocumentBlock | RedactedBlock, Field(discriminator="type")]
ResultBlock = Annotated[
    TextBlock | ImageBlock | DocumentBlock | SearchResultBlock, Field(discriminator="type")
]


class UserMessage(_Strict):
    type: Literal["user.message"]
    content: list[MessageBlock] = Field(min_length=1)

    @field_validator("content")
    @classmethod
    def _no_redacted(cls, content: list[Any]) -> list[Any]:
        for i, block in enumerate(content):
            if isinstance(block, RedactedBlock):
                raise ValueError(f"content[{i}]: redacted blocks cannot be sent by clients")
        return content


class UserInterrupt(_Strict):
    type: Literal["user.interrupt"]
    session_thread_id: str | None = None


class UserToolConfirmation(_Strict):
    type: Literal["user.tool_confirmation"]
    tool_use_id: str = Field(min_length=1)
    result: Literal["allow", "deny"]
    deny_message: str | None = None

    @model_validator(mode="after")
    def _deny_message_only_with_deny(self) -> UserToolConfirmation:
        if self.deny_message is not None and self.result != "deny":
            raise ValueError("deny_message is only allowed when result is 'deny'")
        return self


class UserCustomToolResult(_Strict):
    type: Literal["user.custom_tool_result"]
    custom_tool_use_id: str = Field(min_length=1)
    content: list[ResultBlock] | None = None
    is_error: bool | None = None


class UserToolResult(_Strict):
    type: Literal["user.tool_result"]
    tool_use_id: str = Field(min_length=1)
    content: list[ResultBlock] | None = None
    is_error: bool | None = None


MAX_RUBRIC_CHARS = 262_144
MAX_OUTCOME_ITERATIONS = 20


class TextRubric(_Strict):
    type: Literal["text"]
    content: str = Field(min_length=1, max_length=MAX_RUBRIC_CHARS)


class FileRubric(_Strict):
    type: Literal["file"]
    file_id: str = Field(min_length=1)


class UserDefineOutcome(_Strict):
    type: Literal["user.define_outcome"]
    description: str = Field(min_length=1)
    rubric: Annotated[TextRubric | FileRubric, Field(discriminator="type")]
    max_iterations: int | None = Field(None, ge=1, le=MAX_OUTCOME_ITERATIONS)


class SystemMessage(_Strict):
    type: Literal["system.message"]
    content: list[TextBlock] = Field(min_length=1, max_length=1000)


ClientEvent = Annotated[
    UserMessage
    | UserInterrupt
    | UserToolConfirmation
    | UserCustomToolResult
    | UserToolResult
    | UserDefineOutcome
    | SystemMessage,
    Field(discriminator="type"),
]
InitialEvent = Annotated[UserMessage | UserDefineOutcome, Field(discriminator="type")]


class SendEvents(_Strict):
    events: list[ClientEvent] = Field(min_length=1, max_length=100)


class SendEventsResponse(BaseModel):
    data: list[dict[str, Any]]  # JSON boundary: response bodies (a model here would drop fields)


class EventPage(BaseModel):
    data: list[dict[str, Any]]  # JSON boundary: response bodies (a model here would drop fields)
    next_page: str | None


def dump_event(event: BaseModel) -> EventRecord:
    """The event as stored: only fields that were sent or have meaning (no null noise)."""
    return cast(EventRecord, event.model_dump(mode="json", exclude_none=True))


# Every type `events.list` accepts in `types[]`: the union's 42.
EVENT_TYPES = frozenset(event_types())

DELTA_TYPES = frozenset({"agent.message", "agent.thinking"})
