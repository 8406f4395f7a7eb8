"""Request and response schemas of /v1/memory_stores, its memories and memory versions, after the
SDK's ``BetaManagedAgentsMemoryStore``, ``...Memory``, ``...MemoryPrefix`` and ``...MemoryVersion``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

View = Literal["basic", "full"]
Operation = Literal["created", "modified", "deleted"]
OPERATIONS: tuple[Operation, ...] = ("created", "modified", "deleted")
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


class Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --- actors -------------------------------------------------------------------------------------


class ApiActor(BaseModel):
    type: Literal["api_actor"] = "api_actor"
    api_key_id: str


class SessionActor(BaseModel):
    """An agent writing through a session's mount."""

    type: Literal["session_actor"] = "session_actor"
    session_id: str


Actor = Annotated[ApiActor | SessionActor, Field(discriminator="type")]


# --- stores -------------------------------------------------------------------------------------


class MemoryStoreCreate(Params):
    name: str = Field(min_length=1, max_length=255)
    description: str | None = Field(None, max_length=1024)
    metadata: dict[str, str] | None = None


class MemoryStoreUpdate(Params):
    """``model_fields_set`` tells an omitted field from an explicit null."""

    name: str | None = Field(None, min_length=1, max_length=255)
    description: str | None = Field(None, max_length=1024)
    metadata: dict[str, str | None] | None = None


class MemoryStore(BaseModel):
    type: Literal["memory_store"] = "memory_store"
    id: str
    name: str
    description: str
    metadata: dict[str, str]
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class MemoryStorePage(BaseModel):
    data: list[MemoryStore]
    next_page: str | None


class MemoryStoreDeleted(BaseModel):
    type: Literal["memory_store_deleted"] = "memory_store_deleted"
    id: str


# --- memories -----------------------------------------------------------------------------------


class MemoryCreate(Params):
    path: str
    # Required, but null is taken as empty (the SDK types it Optional).
    content: str | None


class Precondition(Params):
    type: Literal["content_sha256"]
    content_sha256: Sha256


class MemoryUpdate(Params):
    """Omitted (or null) content or path stays as it is; ``path`` renames."""

    content: str | None = None
    path: str | None = None
    precondition: Precondition | None = None


class Memory(BaseModel):
    type: Literal["memory"] = "memory"
    id: str
    memory_store_id: str
    path: str
    content_sha256: str
    content_size_bytes: int
    memory_version_id: str
    created_at: datetime
    updated_at: datetime
    content: str | None


class MemoryPrefix(BaseModel):
    """Memories below ``depth``, rolled up into their directory."""

    type: Literal["memory_prefix"] = "memory_prefix"
    path: str


class MemoryPage(BaseModel):
    data: list[Memory | MemoryPrefix]
    next_page: str | None


class MemoryDeleted(BaseModel):
    type: Literal["memory_deleted"] = "memory_deleted"
    id: str


# --- versions -----------------------------------------------------------------------------------


class MemoryVersion(BaseModel):
    type: Literal["memory_version"] = "memory_version"
    id: str
    memory_id: str
    memory_store_id: str
    operation: Operation
    created_at: datetime
    content: str | None
    content_sha256: str | None
    content_size_bytes: int | None
    path: str | None
    created_by: Actor | None
    redacted_at: datetime | None
    redacted_by: Actor | None


class MemoryVersionPage(BaseModel):
    data: list[MemoryVersion]
    next_page: str | None
