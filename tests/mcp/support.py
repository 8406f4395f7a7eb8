"""Agents with MCP servers, sessions with vaults, and reading MCP events."""

from __future__ import annotations

import json
import uuid
from typing import Any

import anthropic

from tests.support.factories import MODEL

SDK = anthropic.AsyncAnthropic


def mcp_toolset(server: str, policy: str | None = "always_allow", **extra: Any) -> dict[str, Any]:
    toolset: dict[str, Any] = {"type": "mcp_toolset", "mcp_server_name": server, **extra}
    if policy is not None:
        toolset["default_config"] = {"permission_policy": {"type": policy}}
    return toolset


async def mcp_session(
    client: SDK,
    servers: dict[str, str],
    *,
    policy: str | None = "always_allow",
    vault_ids: list[str] | None = None,
    extra_tools: list[dict[str, Any]] | None = None,
    toolset_extra: dict[str, Any] | None = None,
) -> str:
    agent = await client.beta.agents.create(
        name=f"mcp-{uuid.uuid4().hex[:6]}",
        model=MODEL,
        mcp_servers=[{"type": "url", "name": name, "url": url} for name, url in servers.items()],
        tools=[mcp_toolset(name, policy, **(toolset_extra or {})) for name in servers] + (extra_tools or []),  # type: ignore[arg-type]
    )
    environment = await client.beta.environments.create(name=f"env-{agent.id[-8:]}")
    session = await client.beta.sessions.create(
        agent=agent.id, environment_id=environment.id, vault_ids=vault_ids or []
    )
    return session.id


def call(server: str, tool: str, **arguments: Any) -> str:
    return f"/tool mcp__{server}__{tool} {json.dumps(arguments)}"


def text_of(event: Any) -> str:
    return "".join(b.text for b in event.content or [] if b.type == "text")


def errors(events: list[Any]) -> list[Any]:
    return [e.error for e in events if e.type == "session.error"]
