"""How MCP tools appear to the model and how calls to them are governed.

Tools are offered as ``mcp__<server name>__<tool name>``. The Messages API takes tool names of at
most 128 characters from ``[A-Za-z0-9_-]``: other characters become ``_`` and an over-long name
is shortened with a hash suffix; the catalogue maps the offered name back to the server's own.

Permissions come from the agent's ``mcp_toolset`` for the server: ``default_config`` and per-tool
``configs`` (``enabled``, ``always_allow`` / ``always_ask``), defaulting to enabled and
``always_ask`` as on the hosted service.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Literal

from app.events.types import PermissionEvaluation
from app.mcp.base import ListedTool
from app.shared.agent_config import McpToolConfig, McpToolset, SessionAgent, ToolDefaults
from app.shared.content import ToolDefinition

PREFIX = "mcp__"
MAX_NAME = 128
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")

Permission = Literal["allow", "ask", "deny"]


def offered_name(server: str, tool: str) -> str:
    name = f"{PREFIX}{_UNSAFE.sub('_', server)}__{_UNSAFE.sub('_', tool)}"
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha256(f"{server}\0{tool}".encode()).hexdigest()[:10]
    return f"{name[: MAX_NAME - 11]}_{digest}"


@dataclass(frozen=True)
class McpTool:
    server: str
    tool: ListedTool

    @property
    def offered(self) -> str:
        return offered_name(self.server, self.tool.name)

    def definition(self) -> ToolDefinition:
        schema = (
            self.tool.input_schema if self.tool.input_schema.get("type") == "object" else {"type": "object"}
        )
        return {"name": self.offered, "description": self.tool.description[:10_000], "input_schema": schema}


@dataclass(frozen=True)
class ToolConfig:
    enabled: bool
    policy: str


def toolset(agent: SessionAgent, server: str) -> McpToolset | None:
    for tool in agent.get("tools") or []:
        if tool["type"] == "mcp_toolset" and tool.get("mcp_server_name") == server:
            return tool
    return None


def config(agent: SessionAgent, server: str, tool: str) -> ToolConfig:
    found = toolset(agent, server)
    if found is None:
        return ToolConfig(False, "always_ask")
    default = found.get("default_config")
    override = next((c for c in found.get("configs") or [] if c.get("name") == tool), None)
    enabled = override.get("enabled") if override else None
    if enabled is None and default:
        enabled = default.get("enabled")
    policy = _policy_type(override) or _policy_type(default)
    return ToolConfig(True if enabled is None else bool(enabled), policy or "always_ask")


def _policy_type(config: ToolDefaults | McpToolConfig | None) -> str | None:
    policy = config.get("permission_policy") if config else None
    return policy.get("type") if policy else None


def evaluate(agent: SessionAgent, server: str, tool: str) -> tuple[Permission, PermissionEvaluation | None]:
    """The permission of a call and its ``evaluation``; (deny, None) when the tool is not enabled."""
    found = config(agent, server, tool)
    if not found.enabled:
        return "deny", None
    if found.policy == "always_allow":
        return "allow", {"type": "always_allow"}
    if found.policy == "auto":  # until judged by the agent loop: held for the client
        return "ask", {
            "type": "auto",
            "evaluated_permission": {"type": "ask", "reason_code": "indeterminate"},
        }
    return "ask", {"type": "always_ask"}
