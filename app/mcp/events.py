"""The events of MCP calls, as the loop records them."""

from __future__ import annotations

from typing import Any

from app.mcp.tools import evaluate
from app.shared.agent_config import SessionAgent


def mcp_tool_use_event(agent: SessionAgent, use: dict[str, Any], server: str, tool: str) -> dict[str, Any]:
    """``agent.mcp_tool_use``: ``name`` is the MCP tool's own name (the model called it as
    ``mcp__<server>__<tool>``), with the permission its toolset gives it."""
    permission, evaluation = evaluate(agent, server, tool)
    event: dict[str, Any] = {
        "type": "agent.mcp_tool_use",
        "name": tool,
        "mcp_server_name": server,
        "input": use.get("input") or {},
        "evaluated_permission": permission,
    }
    if evaluation is not None:
        event["evaluation"] = evaluation
    return event


def mcp_tool_result_event(
    tool_use_id: str, content: list[dict[str, Any]], *, is_error: bool
) -> dict[str, Any]:
    return {
        "type": "agent.mcp_tool_result",
        "mcp_tool_use_id": tool_use_id,
        "content": content,
        "is_error": is_error,
    }
