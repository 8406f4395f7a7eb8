"""Every create-time validation rule: a 400 invalid_request_error whose message names the field."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest

from tests.agents.factories import TOOLSET, agent_params, custom_tool, mcp_pair, toolset_with
from tests.skills.factories import make_skill

MCP_TOOLS, MCP_SERVERS = mcp_pair()


def _web(name: str = "web_fetch", **settings: Any) -> dict[str, Any]:
    return {"tools": [toolset_with({"name": name, **settings})]}


CASES: list[tuple[str, dict[str, Any], str]] = [
    # built-in toolset
    (
        "unknown built-in tool",
        {"tools": [toolset_with({"name": "python"})]},
        "tools[0].configs[0].name: Input should be 'bash', 'edit'",
    ),
    (
        "policy type",
        {"tools": [toolset_with({"name": "bash", "permission_policy": {"type": "never"}})]},
        "tools[0].configs[0].permission_policy.type: Input should be 'always_allow', 'always_ask' or 'auto'",
    ),
    (
        "default policy type",
        {"tools": [{**TOOLSET, "default_config": {"permission_policy": {"type": "deny"}}}]},
        "tools[0].default_config.permission_policy.type: Input should be",
    ),
    (
        "duplicate configs",
        {"tools": [toolset_with({"name": "bash"}, {"name": "bash"})]},
        "tools[0].configs[1].name: duplicate config for 'bash'",
    ),
    (
        "config type differs",
        {"tools": [toolset_with({"name": "bash", "type": "read"})]},
        "tools[0].configs[0].type: must equal name ('bash')",
    ),
    (
        "two toolsets",
        {"tools": [TOOLSET, TOOLSET]},
        "tools[1].type: only one agent_toolset_20260401 is allowed",
    ),
    (
        "unknown tool type",
        {"tools": [{"type": "computer_20250124"}]},
        "tools[0]: type must be one of 'agent_toolset_20260401', 'mcp_toolset', 'custom'",
    ),
    (
        "too many tools",
        {"tools": [TOOLSET, *[custom_tool(f"t{i}") for i in range(249)]]},
        "tools: at most 256 tools across all toolsets (got 257)",
    ),
    # MCP
    (
        "unreferenced server",
        {"mcp_servers": MCP_SERVERS},
        "mcp_servers[0]: MCP server 'github' is not referenced by any mcp_toolset",
    ),
    (
        "undeclared server",
        {"tools": MCP_TOOLS},
        "tools[0].mcp_server_name: no MCP server named 'github' in mcp_servers",
    ),
    (
        "server used twice",
        {"tools": MCP_TOOLS * 2, "mcp_servers": MCP_SERVERS},
        "tools[1].mcp_server_name: MCP server 'github' is already used by tools[0]",
    ),
    (
        "duplicate server names",
        {"tools": MCP_TOOLS, "mcp_servers": MCP_SERVERS * 2},
        "mcp_servers[1].name: duplicate MCP server name 'github'",
    ),
    (
        "server url",
        {"tools": MCP_TOOLS, "mcp_servers": [{**MCP_SERVERS[0], "url": "github.example.com"}]},
        "mcp_servers[0].url: must be an http(s) URL",
    ),
    (
        "too many servers",
        {"mcp_servers": [{**MCP_SERVERS[0], "name": f"s{i}"} for i in range(21)]},
        "mcp_servers: List should have at most 20 items",
    ),
    (
        "duplicate MCP configs",
        {"tools": [{**MCP_TOOLS[0], "configs": [{"name": "a"}, {"name": "a"}]}], "mcp_servers": MCP_SERVERS},
        "tools[0].configs[1].name: duplicate config for 'a'",
    ),
    (
        "MCP config name",
        {"tools": [{**MCP_TOOLS[0], "configs": [{"name": "x" * 129}]}], "mcp_servers": MCP_SERVERS},
        "tools[0].configs[0].name: String should have at most 128 characters",
    ),
    # custom tools
    (
        "custom name pattern",
        {"tools": [custom_tool("get weather")]},
        "tools[0].name: String should match pattern '^[A-Za-z0-9_-]{1,128}$'",
    ),
    ("custom name length", {"tools": [custom_tool("x" * 129)]}, "tools[0].name: String should match pattern"),
    (
        "custom without description",
        {"tools": [{**custom_tool(), "description": None}]},
        "tools[0].description: Input should be a valid string",
    ),
    (
        "custom empty description",
        {"tools": [{**custom_tool(), "description": ""}]},
        "tools[0].description: String should have at least 1 character",
    ),
    (
        "custom without schema",
        {"tools": [{"type": "custom", "name": "a", "description": "d"}]},
        "tools[0].input_schema: Field required",
    ),
    (
        "custom schema type",
        {"tools": [{**custom_tool(), "input_schema": {"type": "array"}}]},
        "tools[0].input_schema.type: Input should be 'object'",
    ),
    (
        "duplicate custom names",
        {"tools": [custom_tool(), custom_tool()]},
        "tools[1].name: duplicate custom tool name 'get_weather'",
    ),
    (
        "custom named like a built-in",
        {"tools": [TOOLSET, custom_tool("bash")]},
        "tools[1].name: 'bash' is the name of a built-in tool",
    ),
    # web tools
    (
        "domains exclusive",
        _web(allowed_domains=["a.com"], blocked_domains=["b.com"]),
        "tools[0].configs[0].blocked_domains: cannot be combined with allowed_domains",
    ),
    (
        "empty domain list",
        _web(allowed_domains=[]),
        "tools[0].configs[0].allowed_domains: List should have at least 1 item",
    ),
    (
        "65 domains",
        _web(blocked_domains=[f"d{i}.com" for i in range(65)]),
        "tools[0].configs[0].blocked_domains: List should have at most 64 items",
    ),
    (
        "domain scheme",
        _web(allowed_domains=["ok.com", "https://x.com"]),
        "tools[0].configs[0].allowed_domains[1]: 'https://x.com' must be a bare hostname without a scheme",
    ),
    (
        "domain port",
        _web(allowed_domains=["example.com:8080"]),
        "tools[0].configs[0].allowed_domains[0]: 'example.com:8080' must be a bare hostname without a port",
    ),
    (
        "domain IP",
        _web("web_search", allowed_domains=["10.0.0.1"]),
        "tools[0].configs[0].allowed_domains[0]: '10.0.0.1' must be a hostname, not an IP address",
    ),
    (
        "fetch domain path",
        _web(allowed_domains=["example.com/docs"]),
        "tools[0].configs[0].allowed_domains[0]: 'example.com/docs' must be a bare hostname without a path",
    ),
    (
        "domain localhost",
        _web(blocked_domains=["localhost"]),
        "tools[0].configs[0].blocked_domains[0]: 'localhost' must be a public domain name",
    ),
    (
        "domain internal",
        _web(blocked_domains=["db.internal"]),
        "tools[0].configs[0].blocked_domains[0]: 'db.internal' must be a public domain name",
    ),
    (
        "domain wildcard",
        _web(allowed_domains=["*.example.com"]),
        "tools[0].configs[0].allowed_domains[0]: '*.example.com' is not a valid hostname",
    ),
    (
        "domains on bash",
        _web("bash", allowed_domains=["a.com"]),
        "tools[0].configs[0].allowed_domains: is only valid for web_fetch and web_search",
    ),
    (
        "user_location on fetch",
        _web(user_location={"type": "approximate"}),
        "tools[0].configs[0].user_location: is only valid for web_search",
    ),
    (
        "country code",
        _web("web_search", user_location={"type": "approximate", "country": "fr"}),
        "tools[0].configs[0].user_location.country: String should match pattern",
    ),
    (
        "all sources none",
        _web(
            url_sources={"user_input": "none", "client_tool_results": "none", "server_tool_results": "none"}
        ),
        "tools[0].configs[0].url_sources: setting every source to 'none' is rejected",
    ),
    (
        "user_input only",
        _web(
            url_sources={"user_input": {"type": "only", "tools": [{"type": "tool_reference", "name": "x"}]}}
        ),
        "tools[0].configs[0].url_sources.user_input.type: must be 'all' or 'none'",
    ),
    (
        "client filter names",
        _web(
            url_sources={
                "client_tool_results": {"type": "only", "tools": [{"type": "tool_reference", "name": "nope"}]}
            }
        ),
        "tools[0].configs[0].url_sources.client_tool_results.tools[0].name: 'nope' is not one of []",
    ),
    (
        "server filter names",
        _web(
            url_sources={
                "server_tool_results": {
                    "type": "except",
                    "tools": [{"type": "tool_reference", "name": "bash"}],
                }
            }
        ),
        "tools[0].configs[0].url_sources.server_tool_results.tools[0].name: 'bash' is not one of",
    ),
    (
        "filter without tools",
        _web(url_sources={"server_tool_results": {"type": "only"}}),
        "tools[0].configs[0].url_sources.server_tool_results.tools: is required with 'only'",
    ),
    # scalars, skills, identity, model
    ("empty name", {"name": ""}, "name: String should have at least 1 character"),
    ("long name", {"name": "n" * 257}, "name: String should have at most 256 characters"),
    ("long system", {"system": "s" * 100_001}, "system: String should have at most 100000 characters"),
    (
        "long description",
        {"description": "d" * 2049},
        "description: String should have at most 2048 characters",
    ),
    (
        "too many skills",
        {"skills": [{"type": "custom", "skill_id": f"skill_{i}"} for i in range(21)]},
        "skills: List should have at most 20 items",
    ),
    (
        "duplicate skills",
        {"skills": [{"type": "anthropic", "skill_id": "xlsx"}] * 2},
        "skills[1].skill_id: duplicate skill 'xlsx'",
    ),
    (
        "skill type",
        {"skills": [{"type": "builtin", "skill_id": "xlsx"}]},
        "skills[0].type: Input should be 'anthropic' or 'custom'",
    ),
    (
        "aws role without arn",
        {"execution_identity": {"type": "aws_role"}},
        "execution_identity.role_arn: required when type is 'aws_role'",
    ),
    ("empty model", {"model": ""}, "model.id: String should have at least 1 character"),
    (
        "effort level",
        {"model": {"id": "claude-opus-4-8", "effort": "extreme"}},
        "model.effort.type: Input should be 'low', 'medium', 'high', 'xhigh' or 'max'",
    ),
    (
        "speed",
        {"model": {"id": "claude-opus-4-8", "speed": "turbo"}},
        "model.speed: Input should be 'standard' or 'fast'",
    ),
    # multiagent shape
    (
        "empty roster",
        {"multiagent": {"type": "coordinator", "agents": []}},
        "multiagent.agents: List should have at least 1 item",
    ),
    (
        "long roster",
        {"multiagent": {"type": "coordinator", "agents": [{"type": "self"}] * 21}},
        "multiagent.agents: List should have at most 20 items",
    ),
    (
        "unknown roster agent",
        {"multiagent": {"type": "coordinator", "agents": ["agent_nope"]}},
        "multiagent.agents[0].id: agent agent_nope not found",
    ),
    (
        "self twice",
        {"multiagent": {"type": "coordinator", "agents": [{"type": "self"}, {"type": "self"}]}},
        "multiagent.agents[1]: agent agent_",
    ),
    (
        "two advisors",
        {"multiagent": {"type": "coordinator", "agents": [{"type": "advisor", "model": "m"}] * 2}},
        "multiagent.agents[1]: at most one advisor entry is allowed",
    ),
    (
        "multiagent type",
        {"multiagent": {"type": "swarm"}},
        "multiagent: type must be one of 'coordinator', 'multiagent_20261001'",
    ),
    (
        "inline off, none predefined",
        {
            "multiagent": {
                "type": "multiagent_20261001",
                "subagents": {"type": "enabled", "inline_agents": {"type": "disabled"}},
            }
        },
        "multiagent.subagents.predefined_agents: must name at least one agent when inline_agents is disabled",
    ),
    (
        "advisor as predefined",
        {
            "multiagent": {
                "type": "multiagent_20261001",
                "workflows": {"type": "enabled", "predefined_agents": [{"type": "advisor", "model": "m"}]},
            }
        },
        "multiagent.workflows.predefined_agents[0].type: must be 'agent' or 'self'",
    ),
    (
        "advisor without model",
        {"multiagent": {"type": "multiagent_20261001", "advisor": {"type": "enabled"}}},
        "multiagent.advisor.model: required when the advisor is enabled",
    ),
]


@pytest.mark.parametrize(
    ("overrides", "message"), [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_create_rejects(http: httpx.Client, overrides: dict[str, Any], message: str) -> None:
    response = http.post("/v1/agents", json=agent_params(**overrides))

    body = response.json()
    assert response.status_code == 400, body
    assert body["error"]["type"] == "invalid_request_error"
    assert body["error"]["message"].startswith(message), body["error"]["message"]
    assert response.headers["request-id"] == body["request_id"]


@pytest.mark.parametrize(
    ("metadata", "message"),
    [
        ({f"k{i}": "v" for i in range(17)}, "metadata: at most 16 key-value pairs are allowed (got 17)"),
        ({"k" * 65: "v"}, "metadata: keys must be 1-64 characters"),
        ({"": "v"}, "metadata: keys must be 1-64 characters"),
        ({"k": "v" * 513}, "metadata.k: values must be at most 512 characters"),
    ],
)
def test_metadata_limits_raise_invalid_metadata(
    client: anthropic.Anthropic, metadata: dict[str, str], message: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.beta.agents.create(**agent_params(metadata=metadata))

    assert exc.value.error_code == "invalid_metadata"
    assert str(exc.value.body["error"]["message"]).startswith(message)  # type: ignore[index]


def test_limits_at_the_boundary_are_accepted(client: anthropic.Anthropic) -> None:
    agent = client.beta.agents.create(
        **agent_params(
            name="n" * 256,
            system="s" * 100_000,
            description="d" * 2048,
            metadata={f"{i:064d}": "v" * 512 for i in range(16)},
            tools=[TOOLSET, *[custom_tool(f"t{i}") for i in range(248)]],
            skills=[{"type": "custom", "skill_id": make_skill(client).id} for _ in range(20)],
        )
    )

    assert len(agent.tools) == 249 and len(agent.metadata) == 16 and len(agent.skills) == 20
