"""Request and response schemas of /v1/agents, after the SDK's ``types/beta/*`` models.

Request models check shape, types and per-field limits; the rules that relate fields to each
other (names referenced across ``tools`` and ``mcp_servers``, duplicates, domain lists) live in
``app/agents/tools.py`` and ``app/agents/snapshot.py`` so that their messages can name the exact
element (``tools[0].configs[1].name: ...``). Unknown keys are ignored: the SDK's ``extra_body``
may add any.

Tagged unions use callable discriminators whose tags contain a ``-``: the error formatters drop
such tags from a location, so a message reads ``tools[0].name`` and not ``tools[0].custom.name``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, Tag

from app.shared.agent_config import (
    EffortLevel,
    ExecutionIdentity,
    McpServer,
    SkillRef,
    StoredMultiagent,
    Tool,
)
from app.shared.validation import INT32_MAX, type_discriminator

# Versions are INTEGER columns: a larger number is a 400, not a database error.
Version = Annotated[int, Field(ge=1, le=INT32_MAX)]

BuiltinToolName = Literal["bash", "edit", "glob", "grep", "read", "web_fetch", "web_search", "write"]
BUILTIN_TOOLS: tuple[str, ...] = ("bash", "edit", "glob", "grep", "read", "web_fetch", "web_search", "write")


def _type_object(value: Any) -> Any:
    """The API accepts ``"high"`` for ``{"type": "high"}`` (effort, url source filters)."""
    return {"type": value} if isinstance(value, str) else value


def _model_object(value: Any) -> Any:
    return {"id": value} if isinstance(value, str) else value


def _agent_reference(value: Any) -> Any:
    return {"type": "agent", "id": value} if isinstance(value, str) else value


class Params(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --- model --------------------------------------------------------------------------------------


class Effort(Params):
    type: EffortLevel


class ModelParams(Params):
    id: str = Field(min_length=1)
    effort: Annotated[Effort | None, BeforeValidator(_type_object)] = None
    speed: Literal["standard", "fast"] | None = None
    inference_geo: str | None = None


ModelParam = Annotated[ModelParams, BeforeValidator(_model_object)]


# --- tools --------------------------------------------------------------------------------------


class PermissionPolicy(Params):
    type: Literal["always_allow", "always_ask", "auto"]


class ToolDefaults(Params):
    enabled: bool | None = None
    permission_policy: PermissionPolicy | None = None


class ToolReference(Params):
    type: Literal["tool_reference"]
    name: str = Field(min_length=1, max_length=128)


class UrlSourceFilter(Params):
    type: Literal["all", "none", "only", "except"]
    tools: Annotated[list[ToolReference], Field(min_length=1, max_length=128)] | None = None


UrlSource = Annotated[UrlSourceFilter | None, BeforeValidator(_type_object)]


class UrlSources(Params):
    user_input: UrlSource = None
    client_tool_results: UrlSource = None
    server_tool_results: UrlSource = None


class UserLocation(Params):
    type: Literal["approximate"]
    city: str | None = None
    region: str | None = None
    country: str | None = Field(None, pattern=r"^[A-Z]{2}$")
    timezone: str | None = None


DomainList = Annotated[list[str], Field(min_length=1, max_length=64)]


class ToolConfigParams(Params):
    """A per-tool override in an agent toolset (one model for all eight tools; ``tools.py`` checks
    that the web-only keys sit on the web tools)."""

    name: BuiltinToolName
    type: BuiltinToolName | None = None
    enabled: bool | None = None
    permission_policy: PermissionPolicy | None = None
    allowed_domains: DomainList | None = None
    blocked_domains: DomainList | None = None
    max_content_tokens: int | None = Field(None, ge=1)
    url_sources: UrlSources | None = None
    user_location: UserLocation | None = None


class AgentToolsetParams(Params):
    type: Literal["agent_toolset_20260401"]
    default_config: ToolDefaults | None = None
    configs: list[ToolConfigParams] | None = None


class MCPToolConfigParams(Params):
    name: str = Field(min_length=1, max_length=128)
    enabled: bool | None = None
    permission_policy: PermissionPolicy | None = None


class MCPToolsetParams(Params):
    type: Literal["mcp_toolset"]
    mcp_server_name: str = Field(min_length=1, max_length=255)
    default_config: ToolDefaults | None = None
    configs: list[MCPToolConfigParams] | None = None


class InputSchema(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: Literal["object"]
    properties: dict[str, JsonValue] | None = None  # a JSON schema's, kept as written
    required: list[str] | None = None


class CustomToolParams(Params):
    type: Literal["custom"]
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,128}$")
    description: str = Field(min_length=1)
    input_schema: InputSchema


ToolParam = Annotated[
    Annotated[AgentToolsetParams, Tag("agent-toolset")]
    | Annotated[MCPToolsetParams, Tag("mcp-toolset")]
    | Annotated[CustomToolParams, Tag("custom-tool")],
    type_discriminator(
        {"agent_toolset_20260401": "agent-toolset", "mcp_toolset": "mcp-toolset", "custom": "custom-tool"}
    ),
]


class MCPServerParams(Params):
    type: Literal["url"]
    name: str = Field(min_length=1, max_length=255)
    url: str = Field(min_length=1)


# --- skills, identity, multiagent ---------------------------------------------------------------


class SkillParams(Params):
    type: Literal["anthropic", "custom"]
    skill_id: str = Field(min_length=1)
    version: str | None = Field(None, min_length=1)


class ExecutionIdentityParams(Params):
    type: Literal["service_account", "aws_role"]
    role_arn: str | None = Field(None, min_length=1, max_length=2048)


class RosterEntryParams(Params):
    """An id string, ``{type:"agent", id, version?}``, ``{type:"self"}`` or ``{type:"advisor", model}``."""

    type: Literal["agent", "self", "advisor"]
    id: str | None = Field(None, min_length=1)
    version: Version | None = None
    model: str | None = Field(None, min_length=1)


RosterEntry = Annotated[RosterEntryParams, BeforeValidator(_agent_reference)]


class CoordinatorParams(Params):
    type: Literal["coordinator"]
    agents: Annotated[list[RosterEntry], Field(min_length=1, max_length=20)]


class AdvisorParams(Params):
    type: Literal["enabled", "disabled"]
    model: str | None = Field(None, min_length=1)


class InlineAgentsParams(Params):
    type: Literal["enabled", "disabled"]


class DelegationParams(Params):
    """``subagents`` and ``workflows`` share this shape."""

    type: Literal["enabled", "disabled"]
    inline_agents: InlineAgentsParams | None = None
    predefined_agents: Annotated[list[RosterEntry], Field(max_length=20)] | None = None


class Multiagent20261001Params(Params):
    type: Literal["multiagent_20261001"]
    advisor: AdvisorParams | None = None
    subagents: DelegationParams | None = None
    workflows: DelegationParams | None = None


MultiagentParam = Annotated[
    Annotated[CoordinatorParams, Tag("coordinator-multiagent")]
    | Annotated[Multiagent20261001Params, Tag("multiagent-20261001")],
    type_discriminator(
        {"coordinator": "coordinator-multiagent", "multiagent_20261001": "multiagent-20261001"}
    ),
]

# --- requests -----------------------------------------------------------------------------------

Name = Annotated[str, Field(min_length=1, max_length=256)]
Description = Annotated[str, Field(max_length=2048)]
System = Annotated[str, Field(max_length=100_000)]
McpServers = Annotated[list[MCPServerParams], Field(max_length=20)]
Skills = Annotated[list[SkillParams], Field(max_length=20)]


class AgentCreate(Params):
    name: Name
    model: ModelParam
    description: Description | None = None
    system: System | None = None
    tools: list[ToolParam] | None = None
    mcp_servers: McpServers | None = None
    skills: Skills | None = None
    multiagent: MultiagentParam | None = None
    execution_identity: ExecutionIdentityParams | None = None
    metadata: dict[str, str] | None = None


class AgentUpdate(Params):
    """Every field optional; ``model_fields_set`` tells an omitted field from an explicit null."""

    version: Version | None = None
    name: Name | None = None
    model: ModelParam | None = None
    description: Description | None = None
    system: System | None = None
    tools: list[ToolParam] | None = None
    mcp_servers: McpServers | None = None
    skills: Skills | None = None
    multiagent: MultiagentParam | None = None
    execution_identity: ExecutionIdentityParams | None = None
    metadata: dict[str, str | None] | None = None


class SessionAgentRef(Params):
    """The object forms of a session's ``agent`` parameter (the string form is handled before)."""

    type: Literal["agent", "agent_with_overrides"]
    id: str = Field(min_length=1)
    version: Version | None = None
    model: ModelParam | None = None
    system: System | None = None
    tools: list[ToolParam] | None = None
    mcp_servers: McpServers | None = None
    skills: Skills | None = None


class ToolsPatch(Params):
    """``tools`` and ``mcp_servers`` alone: ``sessions.update(agent=...)``, and stored tools re-checked."""

    tools: list[ToolParam] | None = None
    mcp_servers: McpServers | None = None


# --- responses ----------------------------------------------------------------------------------


class ModelConfig(BaseModel):
    id: str
    effort: Effort
    speed: Literal["standard", "fast"]
    inference_geo: str | None = None


class Agent(BaseModel):
    """``BetaManagedAgentsAgent``: a stored ``AgentConfig`` (built by ``tools.py``/``snapshot.py``)
    with the version's id, number and times."""

    type: Literal["agent"] = "agent"
    id: str
    name: str
    description: str | None
    system: str | None
    model: ModelConfig
    # Tagged by `type`: one member is tried, not three (GET an agent is a hot read).
    tools: list[Annotated[Tool, Field(discriminator="type")]]
    mcp_servers: list[McpServer]
    skills: list[SkillRef]
    multiagent: Annotated[StoredMultiagent, Field(discriminator="type")] | None
    execution_identity: ExecutionIdentity
    metadata: dict[str, str]
    version: int
    created_at: datetime
    updated_at: datetime
    archived_at: datetime | None


class AgentPage(BaseModel):
    data: list[Agent]
    next_page: str | None
