"""Thread agents the server defines on the spot: inline agents (defined by the delegating agent
in its tool call, never saved) and the advisor.

An inline agent's tools are chosen from the delegating agent's own enabled built-in tools, with
the same permission policies and web settings; it has no MCP servers, skills or custom tools, and
cannot delegate further (one delegation level). The advisor is a model with no tools whose
context is its own thread: the questions it was asked and its answers.
"""

from __future__ import annotations

from typing import Any

from pydantic import JsonValue

from app.agent_loop import tools
from app.sessions.threads import ADVISOR_NAME
from app.shared.agent_config import AgentToolset, ModelConfig, SessionAgent, Tool, ToolConfig

MAX_NAME = 256
MAX_SYSTEM = 100_000
MAX_DESCRIPTION = 2048
ADVISOR_SYSTEM = (
    "You are an advisor to another AI agent that is working on a task. It consults you with "
    "questions; answer each with concise, concrete advice it can act on. You have no tools and "
    "see only the questions it sends you and your earlier answers."
)


class Refused(Exception):
    """The call cannot be carried out; its message is the tool's error result."""


def _text(spec: dict[str, JsonValue], key: str, limit: int) -> str | None:
    return None if spec.get(key) is None else _required_text(spec, key, limit)


def _required_text(spec: dict[str, JsonValue], key: str, limit: int) -> str:
    value = spec.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > limit:
        raise Refused(f"inline_agent.{key}: a non-empty string of at most {limit} characters")
    return value


def _model(agent: SessionAgent, spec: dict[str, JsonValue]) -> ModelConfig:
    model = agent["model"].copy()
    given = _text(spec, "model", MAX_NAME)
    if given is not None and given != model["id"]:
        model["id"] = given
    return model


def _tools(agent: SessionAgent, spec: dict[str, JsonValue]) -> list[Tool]:
    """An `agent_toolset_20260401` enabling exactly the chosen tools (default: all the delegating
    agent's enabled built-in tools), each keeping the delegating agent's configuration."""
    own = {n: p for n, p in tools.policies(agent).items() if p.kind == "builtin" and p.enabled}
    given = spec.get("tools")
    if given is None:
        names = list(own)
    elif isinstance(given, list) and all(isinstance(n, str) for n in given):
        names = [str(n) for n in given]
    else:
        raise Refused("inline_agent.tools: a list of tool names")
    unknown = sorted(set(names) - set(own))
    if unknown:
        raise Refused(
            f"inline_agent.tools: {', '.join(unknown)} not among your own tools ({', '.join(own) or 'none'})"
        )
    if not names:
        return []
    toolset = next(t for t in agent["tools"] if t["type"] == "agent_toolset_20260401")
    configs = {c["name"]: c for c in toolset.get("configs") or []}
    defaults = toolset["default_config"]

    def chosen(name: str) -> ToolConfig:
        found = configs.get(name)
        if found is not None:
            return {**found, "enabled": True}
        return {
            "type": name,
            "name": name,
            "permission_policy": defaults["permission_policy"],
            "enabled": True,
        }

    only: AgentToolset = {
        "type": toolset["type"],
        "default_config": {**defaults, "enabled": False},
        "configs": [chosen(name) for name in dict.fromkeys(names)],
    }
    return [only]


def inline_agent(agent: SessionAgent, spec: Any) -> SessionAgent:
    """The snapshot of an inline agent defined by ``agent`` (the delegating agent)."""
    if not isinstance(spec, dict):
        raise Refused("inline_agent: an object {name, system?, description?, model?, tools?}")
    name = _required_text(spec, "name", MAX_NAME)
    if name == ADVISOR_NAME:
        raise Refused(f"inline_agent.name: {ADVISOR_NAME} is reserved for the advisor")
    return {
        "type": "inline",
        "name": name,
        "description": _text(spec, "description", MAX_DESCRIPTION),
        "system": _text(spec, "system", MAX_SYSTEM),
        "model": _model(agent, spec),
        "tools": _tools(agent, spec),
        "mcp_servers": [],
        "skills": [],
        "execution_identity": agent.get("execution_identity") or {"type": "service_account"},
    }


def advisor_agent(agent: SessionAgent, model: str) -> SessionAgent:
    """The advisor's thread agent: ``model`` with the delegating agent's model settings."""
    return {
        "type": "advisor",
        "name": ADVISOR_NAME,
        "model": {**agent["model"], "id": model},
        "system": ADVISOR_SYSTEM,
        "tools": [],
        "mcp_servers": [],
        "skills": [],
    }
