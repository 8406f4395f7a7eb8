"""Session params and the session object."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.events.schemas import InitialEvent

Status = Literal["rescheduling", "running", "idle", "terminated"]
# Not documented: a title is a line of text, not a document (agent names take 256).
Title = Annotated[str, Field(max_length=512)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SessionCreate(_Params):
    agent: str | dict[str, Any]
    environment_id: str = Field(min_length=1)
    resources: list[dict[str, Any]] | None = None
    initial_events: list[InitialEvent] | None = Field(None, max_length=50)
    vault_ids: list[str] | None = None
    metadata: dict[str, str] | None = None
    title: Title | None = None
    budget: dict[str, Any] | None = None


class SessionAgentUpdate(_Params):
    tools: list[dict[str, Any]] | None = None
    mcp_servers: list[dict[str, Any]] | None = None


class SessionUpdate(_Params):
    agent: SessionAgentUpdate | None = None
    metadata: dict[str, str | None] | None = None
    title: Title | None = None
    vault_ids: list[str] | None = None
    budget: dict[str, Any] | None = None


class SessionStats(BaseModel):
    active_seconds: float
    duration_seconds: float


class SessionOut(BaseModel):
    id: str
    type: Literal["session"] = "session"
    agent: dict[str, Any]
    environment_id: str
    status: Status
    title: str | None
    metadata: dict[str, str]
    resources: list[dict[str, Any]]
    vault_ids: list[str]
    outcome_evaluations: list[dict[str, Any]]
    stats: SessionStats
    usage: dict[str, Any]
    budget: dict[str, Any] | None = None
    deployment_id: str | None = None
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class SessionPage(BaseModel):
    data: list[SessionOut]
    next_page: str | None
    prev_page: str | None


class SessionDeleted(BaseModel):
    id: str
    type: Literal["session_deleted"] = "session_deleted"


def zero_usage() -> dict[str, Any]:
    return {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
        "list_cost": {"amount": "0", "currency": "USD"},
        "active_seconds": 0.0,
    }


def public_usage(usage: dict[str, Any], active_seconds: float) -> dict[str, Any]:
    """The usage clients see: private bookkeeping (keys starting with `_`) left out."""
    return {
        **{k: v for k, v in usage.items() if not k.startswith("_")},
        "active_seconds": round(active_seconds, 3),
    }
