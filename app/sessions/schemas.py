"""Session params and the session object."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, JsonValue

from app.db.session_json import Budget, OutcomeEvaluation, PublicUsage, UsageTotals
from app.events.schemas import InitialEvent
from app.sessions.resource_schemas import StoredResource

Status = Literal["rescheduling", "running", "idle", "terminated"]
# Not documented: a title is a line of text, not a document (agent names take 256).
Title = Annotated[str, Field(max_length=512)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


class SessionCreate(_Params):
    # JSON values the services check themselves, with messages that name the field:
    # agents.resolve_session_agent, resources.parse_params, budgets.parse, agents.resolve_tools_update.
    agent: str | dict[str, JsonValue]  # an id, or an agent definition
    environment_id: str = Field(min_length=1)
    resources: list[dict[str, JsonValue]] | None = None
    initial_events: list[InitialEvent] | None = Field(None, max_length=50)
    vault_ids: list[str] | None = None
    metadata: dict[str, str] | None = None
    title: Title | None = None
    budget: dict[str, JsonValue] | None = None


class SessionAgentUpdate(_Params):
    tools: list[dict[str, JsonValue]] | None = None
    mcp_servers: list[dict[str, JsonValue]] | None = None


class SessionUpdate(_Params):
    agent: SessionAgentUpdate | None = None
    metadata: dict[str, str | None] | None = None
    title: Title | None = None
    vault_ids: list[str] | None = None
    budget: dict[str, JsonValue] | None = None


class SessionStats(BaseModel):
    active_seconds: float
    duration_seconds: float


class SessionOut(BaseModel):
    id: str
    type: Literal["session"] = "session"
    # JSON boundary: the stored agent snapshot (`SessionAgent`), shown as stored, not validated
    # again on every read (the sessions list renders it from its text, `rendering`).
    agent: dict[str, Any]
    environment_id: str
    status: Status
    title: str | None
    metadata: dict[str, str]
    resources: list[StoredResource]
    vault_ids: list[str]
    outcome_evaluations: list[OutcomeEvaluation]
    stats: SessionStats
    usage: PublicUsage
    budget: Budget | None = None
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


def zero_usage() -> UsageTotals:
    return {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_input_tokens": 0,
        "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
        "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
        "list_cost": {"amount": "0", "currency": "USD"},
        "active_seconds": 0.0,
    }


def _add(total: UsageTotals, more: UsageTotals) -> UsageTotals:
    """Token and server tool counts summed (list cost and active seconds are not)."""
    out = total.copy()
    for key in _COUNTS:
        if key in more:
            out[key] = int(total.get(key) or 0) + more[key]
    if "cache_creation" in more:
        mine = total.get("cache_creation")
        out["cache_creation"] = {
            "ephemeral_5m_input_tokens": (mine["ephemeral_5m_input_tokens"] if mine else 0)
            + more["cache_creation"]["ephemeral_5m_input_tokens"],
            "ephemeral_1h_input_tokens": (mine["ephemeral_1h_input_tokens"] if mine else 0)
            + more["cache_creation"]["ephemeral_1h_input_tokens"],
        }
    if "server_tool_use" in more:
        tools = total.get("server_tool_use")
        out["server_tool_use"] = {
            "web_search_requests": (tools["web_search_requests"] if tools else 0)
            + more["server_tool_use"]["web_search_requests"],
            "web_fetch_requests": (tools["web_fetch_requests"] if tools else 0)
            + more["server_tool_use"]["web_fetch_requests"],
        }
    return out


_COUNTS: tuple[Literal["input_tokens", "output_tokens", "cache_read_input_tokens"], ...] = (
    "input_tokens",
    "output_tokens",
    "cache_read_input_tokens",
)


def rolled_up(own: UsageTotals, threads: Sequence[UsageTotals]) -> UsageTotals:
    """A multi-agent session's usage: its primary thread's plus every child thread's (tokens,
    server tool calls and list cost; `active_seconds` stays the session's own)."""
    if not threads:
        return own
    total = own.copy()
    cost = Decimal(str(own.get("cost_usd", "0")))
    for usage in threads:
        total = _add(total, usage)
        cost += Decimal(str(usage.get("cost_usd", "0")))
    total["cost_usd"] = str(cost)
    total["list_cost"] = {"amount": str(int((cost * 100).to_integral_value())), "currency": "USD"}
    return total


def public_usage(usage: UsageTotals, active_seconds: float) -> PublicUsage:
    """The usage clients see: the exact cost (`cost_usd`) left out."""
    shown: PublicUsage = {
        "input_tokens": usage.get("input_tokens", 0),
        "output_tokens": usage.get("output_tokens", 0),
        "cache_read_input_tokens": usage.get("cache_read_input_tokens", 0),
    }
    if "cache_creation" in usage:
        shown["cache_creation"] = usage["cache_creation"]
    if "server_tool_use" in usage:
        shown["server_tool_use"] = usage["server_tool_use"]
    if "list_cost" in usage:
        shown["list_cost"] = usage["list_cost"]
    shown["active_seconds"] = round(active_seconds, 3)
    return shown
