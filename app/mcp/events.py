"""The events of MCP calls, as the loop records them."""

from __future__ import annotations

from app.events.types import ContentBlock, EventRecord
from app.mcp.tools import evaluate
from app.shared.agent_config import SessionAgent


def mcp_tool_use_event(agent: SessionAgent, use: ContentBlock, server: str, tool: str) -> EventRecord:
    """``agent.mcp_tool_use``: ``name`` is the MCP tool's own name (the model called it as
    ``mcp__<server>__<tool>``), with the permission its toolset gives it."""
    permission, evaluation = evaluate(agent, server, tool)
    event: EventRecord = {
        "type": "agent.mcp_tool_use",
        "name": tool,
        "mcp_server_name": server,
        "input": use.get("input") or {},
        "evaluated_permission": permission,
    }
    if evaluation is not None:
        event["evaluation"] = evaluation
    return event


def mcp_tool_result_event(tool_use_id: str, content: list[ContentBlock], *, is_error: bool) -> EventRecord:
    return {
        "type": "agent.mcp_tool_result",
        "mcp_tool_use_id": tool_use_id,
        "content": content,
        "is_error": is_error,
    }
