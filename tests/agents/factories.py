"""Plain-function factories for agent request payloads."""

from __future__ import annotations

from typing import Any

TOOLSET: dict[str, Any] = {"type": "agent_toolset_20260401"}


def agent_params(**overrides: Any) -> dict[str, Any]:
    return {"name": "test agent", "model": "claude-sonnet-4-6", **overrides}


def custom_tool(name: str = "get_weather") -> dict[str, Any]:
    return {
        "type": "custom",
        "name": name,
        "description": "Current weather for a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }


def mcp_pair(name: str = "github") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """An mcp_toolset and the server it references: (tools, mcp_servers)."""
    toolset = {"type": "mcp_toolset", "mcp_server_name": name, "configs": [{"name": "list_repos"}]}
    return [toolset], [{"type": "url", "name": name, "url": f"https://{name}.example.com/mcp"}]


def toolset_with(*configs: dict[str, Any]) -> dict[str, Any]:
    return {"type": "agent_toolset_20260401", "configs": list(configs)}
