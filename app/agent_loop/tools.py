"""The tools a session's agent offers the model, and the permission each call gets.

Built-in tools come from the resolved `agent_toolset_20260401` config (every tool enabled with
`always_allow` unless configured otherwise); custom tools are passed through and run by the
client. MCP toolsets are not connected by this build: their tools are not offered.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from app.events.types import PermissionEvaluation
from app.shared.agent_config import AgentToolset, Delegation, SessionAgent, ToolConfig, ToolDefaults
from app.shared.content import ToolDefinition

BUILTIN_SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {  # JSON boundary: JSON schemas
    "bash": (
        "Run a command in a persistent bash shell in the session's sandbox (cwd, environment and "
        "background jobs persist between calls). Use `restart: true` to start a fresh shell.",
        {
            "type": "object",
            "properties": {
                "command": {"type": "string", "description": "The command to run."},
                "restart": {
                    "type": "boolean",
                    "description": "Restart the shell instead of running a command.",
                },
                "timeout_ms": {"type": "integer", "description": "Timeout in milliseconds (default 120000)."},
            },
        },
    ),
    "read": (
        "Read a file. Text comes back with line numbers; `view_range` [start, end] is 1-based and "
        "inclusive (end <= 0 reads to the end).",
        {
            "type": "object",
            "properties": {
                "file_path": {"type": "string"},
                "view_range": {"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 2},
            },
            "required": ["file_path"],
        },
    ),
    "write": (
        "Write a file, replacing it whole; parent directories are created.",
        {
            "type": "object",
            "properties": {"file_path": {"type": "string"}, "content": {"type": "string"}},
            "required": ["file_path", "content"],
        },
    ),
    "edit": (
        "Replace `old_string` with `new_string` in a file. `old_string` must occur exactly once "
        "unless `replace_all` is true.",
        {
            "type": "object",
            "properties": {
                "file_path": {"type": "string"},
                "old_string": {"type": "string"},
                "new_string": {"type": "string"},
                "replace_all": {"type": "boolean"},
            },
            "required": ["file_path", "old_string", "new_string"],
        },
    ),
    "glob": (
        "Find files by glob pattern (`**` matches directories), newest first.",
        {
            "type": "object",
            "properties": {"pattern": {"type": "string"}, "path": {"type": "string"}},
            "required": ["pattern"],
        },
    ),
    "grep": (
        "Search file contents with a regular expression (ripgrep).",
        {
            "type": "object",
            "properties": {
                "pattern": {"type": "string"},
                "path": {"type": "string"},
                "glob": {"type": "string"},
                "context": {"type": "integer"},
                "head_limit": {"type": "integer"},
            },
            "required": ["pattern"],
        },
    ),
    "web_fetch": (
        "Fetch a URL from the sandbox (subject to the environment's network policy) and return its text.",
        {"type": "object", "properties": {"url": {"type": "string"}}, "required": ["url"]},
    ),
    "web_search": (
        "Search the web and return results.",
        {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    ),
}

# A multi-agent agent gets these, as its `multiagent` allows; the server runs them (never the
# sandbox). See `orchestration.py`.
_SEND_TO_AGENT = (
    "Send a message to another agent. Without `thread_id` a new thread of `agent` starts with "
    "the message as its task; with the `thread_id` of a thread you started, the message goes "
    "to that thread, which keeps its history. Threads run in parallel with you; each thread's "
    "final reply comes back to you as a message from that thread."
)
_INLINE_AGENT = {
    "type": "object",
    "description": (
        "Instead of `agent`: define the agent of the new thread here (it is not saved). Its "
        "tools are chosen from your own built-in tools; it cannot delegate further."
    ),
    "properties": {
        "name": {"type": "string", "description": "A name for the agent (1-256 characters)."},
        "system": {"type": "string", "description": "Its system prompt."},
        "description": {"type": "string"},
        "model": {"type": "string", "description": "A model id (default: your own model)."},
        "tools": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Names of your built-in tools it may use (default: all of them).",
        },
    },
    "required": ["name"],
}
ORCHESTRATION_SCHEMAS: dict[str, tuple[str, dict[str, Any]]] = {  # JSON boundary: JSON schemas
    "list_agents": (
        "List the agents you can delegate work to, and the threads you have started.",
        {"type": "object", "properties": {}},
    ),
    "send_to_agent": (
        _SEND_TO_AGENT,
        {
            "type": "object",
            "properties": {
                "agent": {"type": "string", "description": "The name of an agent from list_agents."},
                "inline_agent": _INLINE_AGENT,
                "message": {"type": "string", "description": "The task or follow-up."},
                "thread_id": {"type": "string", "description": "A thread you started before."},
            },
            "required": ["message"],
        },
    ),
    "consult_advisor": (
        "Ask your advisor, a model with its own context (your earlier questions and its answers) "
        "and no tools, for advice. Its answer comes back to you as a message from the advisor's "
        "thread; you may keep working meanwhile.",
        {
            "type": "object",
            "properties": {"question": {"type": "string", "description": "What you want advice on."}},
            "required": ["question"],
        },
    ),
    "run_workflow": (
        "Start a workflow run: a plan of phases run one after another; the tasks of a phase run in "
        "parallel, each as a thread of its own, and a task of a later phase is told the replies of "
        "the earlier phases. Each thread's reply also arrives to you as a message from that thread.",
        {
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "description": {"type": "string"},
                "timeout_seconds": {"type": "number", "description": "Time limit of the run (default 3600)."},
                "phases": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "name": {"type": "string"},
                            "description": {"type": "string"},
                            "tasks": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "agent": {
                                            "type": "string",
                                            "description": "A predefined agent's name.",
                                        },
                                        "inline_agent": _INLINE_AGENT,
                                        "message": {"type": "string", "description": "The task."},
                                    },
                                    "required": ["message"],
                                },
                            },
                        },
                        "required": ["name", "tasks"],
                    },
                },
            },
            "required": ["name", "phases"],
        },
    ),
    "stop_workflow": (
        "Stop a workflow run you started: its working threads are interrupted.",
        {
            "type": "object",
            "properties": {"workflow_run_id": {"type": "string"}},
            "required": ["workflow_run_id"],
        },
    ),
}


def delegation(agent: SessionAgent, key: DelegationKey = "subagents") -> Delegation[SessionAgent] | None:
    """The enabled ``subagents`` (or ``workflows``) of a ``multiagent_20261001`` agent, or the
    equivalent of a coordinator roster (predefined agents only) for ``subagents``."""
    multiagent = agent.get("multiagent")
    if not multiagent:
        return None
    if multiagent["type"] == "coordinator":
        if key != "subagents":
            return None
        agents = [e for e in multiagent["agents"] if e["type"] == "agent"]
        return {"type": "enabled", "inline_agents": {"type": "disabled"}, "predefined_agents": agents}
    found = multiagent.get(key)
    return found if found is not None and found["type"] == "enabled" else None


def inline_allowed(agent: SessionAgent, key: DelegationKey = "subagents") -> bool:
    found = delegation(agent, key)
    inline = found.get("inline_agents") if found is not None else None
    return inline is not None and inline["type"] == "enabled"


def coordinates(agent: SessionAgent) -> bool:
    """Whether this agent starts threads: predefined agents to delegate to, or inline ones allowed."""
    found = delegation(agent)
    return found is not None and (bool(found.get("predefined_agents")) or inline_allowed(agent))


def advisor_model(agent: SessionAgent) -> str | None:
    """The model of the agent's advisor (a coordinator roster entry or ``advisor: enabled``)."""
    multiagent = agent.get("multiagent")
    if not multiagent:
        return None
    if multiagent["type"] == "coordinator":
        entry = next((e for e in multiagent["agents"] if e["type"] == "advisor"), None)
        return str(entry["model"]) if entry else None
    advisor = multiagent.get("advisor")
    return str(advisor["model"]) if advisor is not None and advisor["type"] == "enabled" else None


def orchestration_tools(agent: SessionAgent) -> list[str]:
    """The orchestration tools this agent's `multiagent` gives it."""
    names = ["list_agents", "send_to_agent"] if coordinates(agent) else []
    if advisor_model(agent) is not None:
        names.append("consult_advisor")
    if delegation(agent, "workflows") is not None:
        names += ["run_workflow", "stop_workflow"]
    return names


def orchestrates(agent: SessionAgent) -> bool:
    """Whether the agent may have threads working for it (it waits for them before idling)."""
    return bool(orchestration_tools(agent))


def is_orchestration(agent: SessionAgent, name: str) -> bool:
    return name in orchestration_tools(agent) and name not in policies(agent)


DelegationKey = Literal["subagents", "workflows"]
Permission = Literal["allow", "ask", "deny"]


@dataclass(frozen=True)
class ToolPolicy:
    kind: Literal["builtin", "custom"]
    enabled: bool
    policy: str  # always_allow | always_ask | auto


def _policy_type(config: ToolDefaults | ToolConfig | None) -> str | None:
    policy = config.get("permission_policy") if config else None
    return policy.get("type") if policy else None


def _toolset_policies(toolset: AgentToolset) -> dict[str, ToolPolicy]:
    default = toolset.get("default_config")
    default_enabled = default.get("enabled", True) if default else True
    default_policy = _policy_type(default) or "always_allow"
    overrides = {c["name"]: c for c in toolset.get("configs") or []}
    policies = {}
    for name in BUILTIN_SCHEMAS:
        config = overrides.get(name)
        enabled = config.get("enabled") if config else None
        policies[name] = ToolPolicy(
            "builtin", default_enabled if enabled is None else enabled, _policy_type(config) or default_policy
        )
    return policies


def policies(agent: SessionAgent) -> dict[str, ToolPolicy]:
    """Every tool name the model may call, with how a call is governed."""
    found: dict[str, ToolPolicy] = {}
    for tool in agent.get("tools") or []:
        if tool["type"] == "agent_toolset_20260401":
            found.update(_toolset_policies(tool))
        elif tool["type"] == "custom":
            found[tool["name"]] = ToolPolicy("custom", True, "client")
    return found


# The Messages API's own search tool, used for `web_search` when the backend is the real API.
SERVER_WEB_SEARCH: ToolDefinition = {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}


def definitions(agent: SessionAgent, *, server_web_search: bool = False) -> list[ToolDefinition]:
    """The `tools` of a Messages API request. With `server_web_search`, `web_search` is the API's
    server tool (it runs at Anthropic, like on the hosted service); otherwise a client tool that
    the sandbox answers from `MAS_WEB_SEARCH_URL`."""
    offered = policies(agent)
    out: list[ToolDefinition] = []
    for name, (description, schema) in BUILTIN_SCHEMAS.items():
        if name not in offered or not offered[name].enabled:
            continue
        if name == "web_search" and server_web_search:
            out.append(SERVER_WEB_SEARCH.copy())
        else:
            out.append({"name": name, "description": description, "input_schema": schema})
    for name in orchestration_tools(agent):
        if name not in offered:
            description, schema = ORCHESTRATION_SCHEMAS[name]
            if name == "send_to_agent" and not inline_allowed(agent):
                properties = {k: v for k, v in schema["properties"].items() if k != "inline_agent"}
                schema = {**schema, "properties": properties}
            out.append({"name": name, "description": description, "input_schema": schema})
    for tool in agent.get("tools") or []:
        if tool["type"] == "custom":
            out.append(
                {
                    "name": tool["name"],
                    "description": tool["description"],
                    "input_schema": tool["input_schema"],
                }
            )
    return out


def evaluate(agent: SessionAgent, name: str) -> tuple[Permission, PermissionEvaluation | None]:
    """The permission of a built-in call and its `evaluation`; (deny, None) when not enabled."""
    if is_orchestration(agent, name):
        return "allow", {"type": "always_allow"}
    policy = policies(agent).get(name)
    if policy is None or policy.kind != "builtin" or not policy.enabled:
        return "deny", None
    if policy.policy == "always_ask":
        return "ask", {"type": "always_ask"}
    if policy.policy == "auto":  # until judged (see `judge`): held for the client
        return "ask", {
            "type": "auto",
            "evaluated_permission": {"type": "ask", "reason_code": "indeterminate"},
        }
    return "allow", {"type": "always_allow"}


def judged_by_server(agent: SessionAgent, name: str) -> bool:
    """Whether a built-in call falls under the `auto` policy (the server judges it)."""
    policy = policies(agent).get(name)
    return policy is not None and policy.kind == "builtin" and policy.enabled and policy.policy == "auto"


def is_custom(agent: SessionAgent, name: str) -> bool:
    found = policies(agent).get(name)
    return found is not None and found.kind == "custom"
