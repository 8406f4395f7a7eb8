"""Tool configuration: the rules that relate ``tools`` and ``mcp_servers``, and their resolved form.

The resolved form is what responses and session snapshots carry, with every default filled in:
the toolset's ``default_config`` and each override's ``enabled`` and ``permission_policy``.
``configs`` echoes the overrides the caller gave (it is not expanded to all eight tools).
Resolving an already resolved list gives the same list, so an update that replaces only
``mcp_servers`` re-checks the stored tools by parsing them back into params.

Every error is a 400 whose message starts with the element's path, e.g.
``tools[0].configs[1].name: duplicate config for 'bash'``.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from app.agents.schemas import (
    BUILTIN_TOOLS,
    AgentToolsetParams,
    CustomToolParams,
    MCPServerParams,
    MCPToolsetParams,
    PermissionPolicy,
    ToolConfigParams,
    ToolParam,
    ToolsPatch,
)
from app.agents.schemas import ToolDefaults as ToolDefaultsParams
from app.agents.schemas import UrlSourceFilter as UrlSourceFilterParams
from app.agents.schemas import UrlSources as UrlSourcesParams
from app.errors import InvalidRequest
from app.shared.agent_config import (
    AgentToolset,
    CustomTool,
    McpServer,
    McpToolConfig,
    McpToolset,
    Tool,
    ToolConfig,
    ToolDefaults,
    UrlSourceFilter,
    UrlSources,
)
from app.shared.agent_config import PermissionPolicy as ResolvedPolicy
from app.shared.hosts import host_problem

# The SDK's docstring (2.12) says 256 across all toolsets; the older skill docs said 128.
MAX_TOOLS = 256
TOOLSET_POLICY = PermissionPolicy(type="always_allow")
MCP_POLICY = PermissionPolicy(type="always_ask")
SERVER_TOOLS = frozenset({"web_search", "web_fetch"})
_KEY_OWNERS = {
    "allowed_domains": SERVER_TOOLS,
    "blocked_domains": SERVER_TOOLS,
    "max_content_tokens": frozenset({"web_fetch"}),
    "url_sources": frozenset({"web_fetch"}),
    "user_location": frozenset({"web_search"}),
}


def _fail(where: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{where}: {message}")


def _at(prefix: str, field: str) -> str:
    return f"{prefix}.{field}" if prefix else field


def parse_stored(tools: list[Tool], mcp_servers: list[McpServer]) -> ToolsPatch:
    """Resolved tools and servers as params again (they always parse: see the module docstring)."""
    return ToolsPatch.model_validate({"tools": tools, "mcp_servers": mcp_servers})


def resolve_tools(
    tools: Sequence[ToolParam], servers: Sequence[MCPServerParams], prefix: str = ""
) -> tuple[list[Tool], list[McpServer]]:
    """Check ``tools`` and ``mcp_servers`` together; return both in resolved form."""
    _check_servers(servers, prefix)
    _check_tool_list(tools, prefix)
    _check_references(tools, servers, prefix)
    custom_names = {tool.name for tool in tools if isinstance(tool, CustomToolParams)}
    resolved = [
        _resolve_tool(tool, custom_names, f"{_at(prefix, 'tools')}[{i}]") for i, tool in enumerate(tools)
    ]
    return resolved, [{"type": server.type, "name": server.name, "url": server.url} for server in servers]


def read_tool_enabled(tools: Sequence[Tool]) -> bool:
    """Whether resolved ``tools`` leave the built-in ``read`` tool usable (skills need it)."""
    for tool in tools:
        if tool["type"] != "agent_toolset_20260401":
            continue
        override = next((c for c in tool["configs"] if c["name"] == "read"), None)
        return bool(override["enabled"] if override else tool["default_config"]["enabled"])
    return False


# --- whole-list checks --------------------------------------------------------------------------


def _check_servers(servers: Sequence[MCPServerParams], prefix: str) -> None:
    seen: set[str] = set()
    for i, server in enumerate(servers):
        where = f"{_at(prefix, 'mcp_servers')}[{i}]"
        if server.name in seen:
            raise _fail(f"{where}.name", f"duplicate MCP server name {server.name!r}")
        seen.add(server.name)
        url = urlsplit(server.url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise _fail(f"{where}.url", "must be an http(s) URL")


def _weight(tool: ToolParam) -> int:
    if isinstance(tool, AgentToolsetParams):
        return len(BUILTIN_TOOLS)
    if isinstance(tool, MCPToolsetParams):
        return max(1, len(tool.configs or []))
    return 1


def _check_tool_list(tools: Sequence[ToolParam], prefix: str) -> None:
    total = sum(_weight(tool) for tool in tools)
    if total > MAX_TOOLS:
        raise _fail(_at(prefix, "tools"), f"at most {MAX_TOOLS} tools across all toolsets (got {total})")
    toolsets = [i for i, tool in enumerate(tools) if isinstance(tool, AgentToolsetParams)]
    if len(toolsets) > 1:
        raise _fail(
            f"{_at(prefix, 'tools')}[{toolsets[1]}].type", "only one agent_toolset_20260401 is allowed"
        )
    seen: set[str] = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, CustomToolParams):
            continue
        where = f"{_at(prefix, 'tools')}[{i}].name"
        if tool.name in seen:
            raise _fail(where, f"duplicate custom tool name {tool.name!r}")
        if toolsets and tool.name in BUILTIN_TOOLS:
            raise _fail(where, f"{tool.name!r} is the name of a built-in tool of the agent toolset")
        seen.add(tool.name)


def _check_references(tools: Sequence[ToolParam], servers: Sequence[MCPServerParams], prefix: str) -> None:
    declared = {server.name: i for i, server in enumerate(servers)}
    used: dict[str, int] = {}
    for i, tool in enumerate(tools):
        if not isinstance(tool, MCPToolsetParams):
            continue
        where = f"{_at(prefix, 'tools')}[{i}].mcp_server_name"
        if tool.mcp_server_name not in declared:
            raise _fail(where, f"no MCP server named {tool.mcp_server_name!r} in mcp_servers")
        if tool.mcp_server_name in used:
            raise _fail(
                where,
                f"MCP server {tool.mcp_server_name!r} is already used by tools[{used[tool.mcp_server_name]}]",
            )
        used[tool.mcp_server_name] = i
    for name, i in declared.items():
        if name not in used:
            raise _fail(
                f"{_at(prefix, 'mcp_servers')}[{i}]",
                f"MCP server {name!r} is not referenced by any mcp_toolset in tools",
            )


# --- one tool -----------------------------------------------------------------------------------


def _resolve_tool(tool: ToolParam, custom_names: set[str], where: str) -> Tool:
    if isinstance(tool, AgentToolsetParams):
        return _resolve_toolset(tool, custom_names, where)
    if isinstance(tool, MCPToolsetParams):
        return _resolve_mcp_toolset(tool, where)
    custom: CustomTool = {
        "type": "custom",
        "name": tool.name,
        "description": tool.description,
        "input_schema": tool.input_schema.model_dump(exclude_unset=True),
    }
    return custom


def _defaults(given: ToolDefaultsParams | None, policy: PermissionPolicy) -> ToolDefaults:
    enabled = given.enabled if given is not None and given.enabled is not None else True
    chosen = given.permission_policy if given is not None and given.permission_policy else policy
    return {"enabled": enabled, "permission_policy": {"type": chosen.type}}


def _override(enabled: bool | None, policy: PermissionPolicy | None, defaults: ToolDefaults) -> ToolDefaults:
    """A per-tool override: a null or missing field inherits the toolset's default."""
    return {
        "enabled": defaults["enabled"] if enabled is None else enabled,
        "permission_policy": _policy(policy) if policy else defaults["permission_policy"],
    }


def _policy(policy: PermissionPolicy) -> ResolvedPolicy:
    return {"type": policy.type}


def _unique_names(names: Sequence[str], where: str) -> None:
    seen: set[str] = set()
    for j, name in enumerate(names):
        if name in seen:
            raise _fail(f"{where}.configs[{j}].name", f"duplicate config for {name!r}")
        seen.add(name)


def _resolve_toolset(tool: AgentToolsetParams, custom_names: set[str], where: str) -> AgentToolset:
    defaults = _defaults(tool.default_config, TOOLSET_POLICY)
    configs = tool.configs or []
    _unique_names([config.name for config in configs], where)
    resolved = [
        _resolve_config(config, defaults, custom_names, f"{where}.configs[{j}]")
        for j, config in enumerate(configs)
    ]
    return {"type": tool.type, "default_config": defaults, "configs": resolved}


def _resolve_mcp_toolset(tool: MCPToolsetParams, where: str) -> McpToolset:
    defaults = _defaults(tool.default_config, MCP_POLICY)
    configs = tool.configs or []
    _unique_names([config.name for config in configs], where)
    resolved: list[McpToolConfig] = [
        {"name": config.name, **_override(config.enabled, config.permission_policy, defaults)}
        for config in configs
    ]
    return {
        "type": tool.type,
        "mcp_server_name": tool.mcp_server_name,
        "default_config": defaults,
        "configs": resolved,
    }


def _resolve_config(
    config: ToolConfigParams, defaults: ToolDefaults, custom_names: set[str], where: str
) -> ToolConfig:
    if config.type is not None and config.type != config.name:
        raise _fail(f"{where}.type", f"must equal name ({config.name!r})")
    for key, owners in _KEY_OWNERS.items():
        if getattr(config, key) is not None and config.name not in owners:
            raise _fail(f"{where}.{key}", f"is only valid for {' and '.join(sorted(owners))}")
    override = _override(config.enabled, config.permission_policy, defaults)
    resolved: ToolConfig = {
        "type": config.name,
        "name": config.name,
        "enabled": override["enabled"],
        "permission_policy": override["permission_policy"],
    }
    _web_settings(resolved, config, custom_names, where)
    return resolved


# --- web tools ----------------------------------------------------------------------------------


def _web_settings(settings: ToolConfig, config: ToolConfigParams, custom_names: set[str], where: str) -> None:
    """Add the web tools' keys the caller gave to ``settings``, in the order of the response."""
    if config.allowed_domains is not None and config.blocked_domains is not None:
        raise _fail(f"{where}.blocked_domains", "cannot be combined with allowed_domains")
    path_ok = config.name == "web_search"
    if config.allowed_domains is not None:
        settings["allowed_domains"] = _check_domains(
            config.allowed_domains, path_ok, f"{where}.allowed_domains"
        )
    if config.blocked_domains is not None:
        settings["blocked_domains"] = _check_domains(
            config.blocked_domains, path_ok, f"{where}.blocked_domains"
        )
    if config.max_content_tokens is not None:
        settings["max_content_tokens"] = config.max_content_tokens
    if config.url_sources is not None:
        settings["url_sources"] = _resolve_url_sources(
            config.url_sources, custom_names, f"{where}.url_sources"
        )
    if config.user_location is not None:
        location = config.user_location
        settings["user_location"] = {
            "type": location.type,
            "city": location.city,
            "region": location.region,
            "country": location.country,
            "timezone": location.timezone,
        }


def _check_domains(domains: list[str], path_ok: bool, where: str) -> list[str]:
    for k, domain in enumerate(domains):
        problem = host_problem(domain, path=path_ok, public=True)
        if problem:
            raise _fail(f"{where}[{k}]", f"{domain!r} {problem}")
    return list(domains)


def _resolve_url_sources(sources: UrlSourcesParams, custom_names: set[str], where: str) -> UrlSources:
    user = sources.user_input
    if user is not None and user.type not in ("all", "none"):
        raise _fail(f"{where}.user_input.type", "must be 'all' or 'none'")
    resolved: UrlSources = {
        "user_input": _resolve_filter(user, set(), f"{where}.user_input"),
        "client_tool_results": _resolve_filter(
            sources.client_tool_results, custom_names, f"{where}.client_tool_results"
        ),
        "server_tool_results": _resolve_filter(
            sources.server_tool_results, SERVER_TOOLS, f"{where}.server_tool_results"
        ),
    }
    if all(value is not None and value["type"] == "none" for value in _filters(resolved)):
        raise _fail(where, "setting every source to 'none' is rejected")
    return resolved


def _filters(sources: UrlSources) -> list[UrlSourceFilter | None]:
    return [sources["user_input"], sources["client_tool_results"], sources["server_tool_results"]]


def _resolve_filter(
    source: UrlSourceFilterParams | None, allowed: set[str] | frozenset[str], where: str
) -> UrlSourceFilter | None:
    if source is None:
        return None
    if source.type in ("all", "none"):
        if source.tools is not None:
            raise _fail(f"{where}.tools", f"is only valid with 'only' or 'except', not {source.type!r}")
        return {"type": source.type}
    if not source.tools:
        raise _fail(f"{where}.tools", f"is required with {source.type!r}")
    seen: set[str] = set()
    for k, ref in enumerate(source.tools):
        if ref.name in seen:
            raise _fail(f"{where}.tools[{k}].name", f"duplicate tool {ref.name!r}")
        if ref.name not in allowed:
            raise _fail(f"{where}.tools[{k}].name", f"{ref.name!r} is not one of {sorted(allowed)}")
        seen.add(ref.name)
    return {"type": source.type, "tools": [{"type": ref.type, "name": ref.name} for ref in source.tools]}
