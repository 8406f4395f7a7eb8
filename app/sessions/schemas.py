"""Session params and the session object."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
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


def _add(total: dict[str, Any], more: dict[str, Any]) -> dict[str, Any]:
    out = dict(total)
    for key, value in more.items():
        if isinstance(value, bool) or key in ("list_cost", "_cost_usd"):
            continue
        if isinstance(value, int):
            out[key] = int(out.get(key) or 0) + value
        elif isinstance(value, dict):
            out[key] = _add(out.get(key) or {}, value)
    return out


def rolled_up(own: dict[str, Any], threads: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A multi-agent session's usage: its primary thread's plus every child thread's (tokens,
    server tool calls and list cost; `active_seconds` stays the session's own)."""
    if not threads:
        return own
    total = dict(own)
    cost = Decimal(str(own.get("_cost_usd", "0")))
    for usage in threads:
        total = _add(total, usage)
        cost += Decimal(str(usage.get("_cost_usd", "0")))
    total["_cost_usd"] = str(cost)
    total["list_cost"] = {"amount": str(int((cost * 100).to_integral_value())), "currency": "USD"}
    return total


def public_usage(usage: dict[str, Any], active_seconds: float) -> dict[str, Any]:
    """The usage clients see: private bookkeeping (keys starting with `_`) left out."""
    return {
        **{k: v for k, v in usage.items() if not k.startswith("_")},
        "active_seconds": round(active_seconds, 3),
    }
