"""An agent's configuration as it is stored and snapshotted, typed: the JSON of
``AgentVersion.config`` (``AgentConfig``) and of a session's ``agent`` column (``SessionAgent``).

TypedDicts, so at run time they stay the plain dicts the database and the API carry. Every default
is materialised (``app/agents/snapshot.py`` and ``app/agents/tools.py`` build them), so keys are
required unless a kind of snapshot lacks them. A leaf module: the database models annotate their
JSON columns with these types, and ``app/agents`` (which builds them) sits above the database.

The multiagent shapes are generic in the roster entry: an agent version stores references
(``AgentReference``: ``{type:"agent", id, version}``); a session snapshot expands each reference to
that version's full definition (``SessionAgent``).
"""

from __future__ import annotations

from typing import Any, Generic, Literal, NotRequired, TypeVar

# pydantic (response models) accepts only typing_extensions' TypedDict before Python 3.12.
from typing_extensions import TypedDict

EffortLevel = Literal["low", "medium", "high", "xhigh", "max"]
PolicyType = Literal["always_allow", "always_ask", "auto"]


class Effort(TypedDict):
    type: EffortLevel


class ModelConfig(TypedDict):
    id: str
    effort: Effort
    speed: Literal["standard", "fast"]
    inference_geo: str | None


# --- tools --------------------------------------------------------------------------------------


class PermissionPolicy(TypedDict):
    type: PolicyType


class ToolDefaults(TypedDict):
    enabled: bool
    permission_policy: PermissionPolicy


class ToolReference(TypedDict):
    type: Literal["tool_reference"]
    name: str


class UrlSourceFilter(TypedDict):
    type: Literal["all", "none", "only", "except"]
    tools: NotRequired[list[ToolReference]]


class UrlSources(TypedDict):
    user_input: UrlSourceFilter | None
    client_tool_results: UrlSourceFilter | None
    server_tool_results: UrlSourceFilter | None


class UserLocation(TypedDict):
    type: Literal["approximate"]
    city: str | None
    region: str | None
    country: str | None
    timezone: str | None


class ToolConfig(TypedDict):
    """One override in ``agent_toolset_20260401.configs``; the web keys only on the web tools."""

    type: str
    name: str
    enabled: bool
    permission_policy: PermissionPolicy
    allowed_domains: NotRequired[list[str]]
    blocked_domains: NotRequired[list[str]]
    max_content_tokens: NotRequired[int]
    url_sources: NotRequired[UrlSources]
    user_location: NotRequired[UserLocation]


class AgentToolset(TypedDict):
    type: Literal["agent_toolset_20260401"]
    default_config: ToolDefaults
    configs: list[ToolConfig]


class McpToolConfig(TypedDict):
    name: str
    enabled: bool
    permission_policy: PermissionPolicy


class McpToolset(TypedDict):
    type: Literal["mcp_toolset"]
    mcp_server_name: str
    default_config: ToolDefaults
    configs: list[McpToolConfig]


class CustomTool(TypedDict):
    type: Literal["custom"]
    name: str
    description: str
    input_schema: dict[str, Any]  # JSON boundary: a JSON schema the caller wrote


Tool = AgentToolset | McpToolset | CustomTool


class McpServer(TypedDict):
    type: Literal["url"]
    name: str
    url: str


class SkillRef(TypedDict):
    """``version`` is a version id, an epoch name or ``latest`` on an agent; a session pins it."""

    type: Literal["anthropic", "custom"]
    skill_id: str
    version: str


class ExecutionIdentity(TypedDict):
    type: Literal["service_account", "aws_role"]
    role_arn: NotRequired[str]


# --- multiagent ---------------------------------------------------------------------------------

E = TypeVar("E")


class AgentReference(TypedDict):
    type: Literal["agent"]
    id: str
    version: int


class AdvisorEntry(TypedDict):
    """A coordinator roster's advisor: a model, no agent resource."""

    type: Literal["advisor"]
    model: str


class Coordinator(TypedDict, Generic[E]):
    type: Literal["coordinator"]
    agents: list[E | AdvisorEntry]


class Toggle(TypedDict):
    type: Literal["enabled", "disabled"]


class AdvisorSetting(TypedDict):
    type: Literal["enabled", "disabled"]
    model: NotRequired[str]


class Delegation(TypedDict, Generic[E]):
    """``subagents``/``workflows``: ``{type:"disabled"}`` or enabled with both keys."""

    type: Literal["enabled", "disabled"]
    inline_agents: NotRequired[Toggle]
    predefined_agents: NotRequired[list[E]]


class Multiagent20261001(TypedDict, Generic[E]):
    type: Literal["multiagent_20261001"]
    advisor: AdvisorSetting
    subagents: Delegation[E]
    workflows: Delegation[E]


StoredMultiagent = Coordinator[AgentReference] | Multiagent20261001[AgentReference]


# --- the two snapshots --------------------------------------------------------------------------


class AgentConfig(TypedDict):
    """``AgentVersion.config``: the response of GET /v1/agents/{id} without id, version and times."""

    name: str
    description: str | None
    system: str | None
    model: ModelConfig
    tools: list[Tool]
    mcp_servers: list[McpServer]
    skills: list[SkillRef]
    multiagent: StoredMultiagent | None
    execution_identity: ExecutionIdentity
    metadata: dict[str, str]


class SessionAgent(TypedDict):
    """A session's (or thread's) ``agent``: ``BetaManagedAgentsSessionAgent`` with skills pinned and
    roster agents expanded. Threads also run ``inline`` agents (no id or version) and the
    ``advisor`` (no id, version, description or identity); a thread's ``multiagent`` is null."""

    type: Literal["agent", "inline", "advisor"]
    id: NotRequired[str]
    version: NotRequired[int]
    name: str
    description: NotRequired[str | None]
    system: str | None
    model: ModelConfig
    tools: list[Tool]
    mcp_servers: list[McpServer]
    skills: list[SkillRef]
    execution_identity: NotRequired[ExecutionIdentity]
    multiagent: NotRequired[SessionMultiagent | None]


SessionMultiagent = Coordinator[SessionAgent] | Multiagent20261001[SessionAgent]
