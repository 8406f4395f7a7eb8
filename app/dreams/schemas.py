"""Request and response schemas of /v1/dreams, after the SDK's ``BetaDream`` (research preview)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, Tag

from app.db.dream_json import DreamModel, DreamOutputBehavior
from app.shared.validation import type_discriminator

DreamStatus = Literal["pending", "running", "completed", "failed", "canceled"]
STATUSES: tuple[DreamStatus, ...] = ("pending", "running", "completed", "failed", "canceled")
ACTIVE: tuple[DreamStatus, ...] = ("pending", "running")
FINAL: tuple[DreamStatus, ...] = ("completed", "failed", "canceled")


class Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


class MemoryStoreInput(Params):
    type: Literal["memory_store"]
    memory_store_id: str = Field(min_length=1)


class SessionsInput(Params):
    type: Literal["sessions"]
    session_ids: list[Annotated[str, Field(min_length=1)]] = Field(min_length=1, max_length=100)


DreamInput = Annotated[
    Annotated[MemoryStoreInput, Tag("memory-store-input")] | Annotated[SessionsInput, Tag("sessions-input")],
    type_discriminator({"memory_store": "memory-store-input", "sessions": "sessions-input"}),
]


class ModelParams(Params):
    id: str = Field(min_length=1, max_length=256)
    speed: Literal["standard", "fast"] | None = None


class CreateNew(Params):
    type: Literal["create_new"]


class UpdateExisting(Params):
    type: Literal["update_existing"]
    memory_store_id: str = Field(min_length=1)


OutputBehavior = Annotated[
    Annotated[CreateNew, Tag("create-new")] | Annotated[UpdateExisting, Tag("update-existing")],
    type_discriminator({"create_new": "create-new", "update_existing": "update-existing"}),
]


def _model_object(value: Any) -> Any:
    return {"id": value} if isinstance(value, str) else value


class DreamCreate(Params):
    inputs: list[DreamInput]
    # A model id, or {id, speed}.
    model: Annotated[ModelParams, BeforeValidator(_model_object)]
    instructions: str | None = Field(None, min_length=1, max_length=4096)
    output_behavior: OutputBehavior | None = None


class DreamUsage(BaseModel):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class DreamError(BaseModel):
    type: str
    message: str


class Dream(BaseModel):
    type: Literal["dream"] = "dream"
    id: str
    status: DreamStatus
    inputs: list[DreamInput]
    model: DreamModel
    instructions: str | None
    output_behavior: DreamOutputBehavior
    outputs: list[MemoryStoreInput]
    session_id: str | None
    error: DreamError | None
    usage: DreamUsage
    created_at: datetime
    ended_at: datetime | None
    archived_at: datetime | None


class DreamPage(BaseModel):
    data: list[Dream]
    next_page: str | None
