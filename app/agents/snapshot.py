"""An agent version's configuration: built from create params, and patched by update params.

A stored configuration (``AgentVersion.config``) holds ``name, description, system, model, tools,
mcp_servers, skills, multiagent, execution_identity, metadata`` with every default materialised,
in the exact shape of the response. ``multiagent`` needs the database (roster entries are
resolved to versions) and is filled in by the service.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, TypeVar

from app.agents import tools as toolcfg
from app.agents.schemas import AgentCreate, AgentUpdate, ExecutionIdentityParams, ModelParams, SkillParams
from app.errors import InvalidRequest
from app.shared.agent_config import (
    AgentConfig,
    EffortLevel,
    ExecutionIdentity,
    McpServer,
    ModelConfig,
    SkillRef,
    Tool,
)
from app.shared.metadata import patch_metadata, validate_metadata

# The Messages API's effort defaults to "high" on every model that supports it; without a model
# catalogue we use it for every model id.
DEFAULT_EFFORT: Final = "high"
DEFAULT_SPEED: Final = "standard"
DEFAULT_IDENTITY: ExecutionIdentity = {"type": "service_account"}
# An unpinned skill stays "latest" on the agent; sessions pin it when they are created.
LATEST_SKILL_VERSION = "latest"

T = TypeVar("T")


def blank_to_none(value: str | None) -> str | None:
    """``system`` and ``description``: an empty string clears, like null."""
    return value or None


def resolve_model(params: ModelParams, stored: ModelConfig | None = None) -> ModelConfig:
    """The model object replaces the stored one, except that the same ``id`` without ``effort``
    keeps the stored effort; a new ``id`` without ``effort`` gets the default."""
    effort: EffortLevel
    if params.effort is not None:
        effort = params.effort.type
    elif stored is not None and stored["id"] == params.id and "effort" not in params.model_fields_set:
        effort = stored["effort"]["type"]
    else:
        effort = DEFAULT_EFFORT
    return {
        "id": params.id,
        "effort": {"type": effort},
        "speed": params.speed or DEFAULT_SPEED,
        "inference_geo": params.inference_geo or None,
    }


def resolve_skills(skills: Sequence[SkillParams], prefix: str = "") -> list[SkillRef]:
    seen: set[str] = set()
    for i, skill in enumerate(skills):
        if skill.skill_id in seen:
            raise InvalidRequest(f"{prefix}skills[{i}].skill_id: duplicate skill {skill.skill_id!r}")
        seen.add(skill.skill_id)
    return [
        {"type": skill.type, "skill_id": skill.skill_id, "version": skill.version or LATEST_SKILL_VERSION}
        for skill in skills
    ]


def resolve_identity(params: ExecutionIdentityParams | None) -> ExecutionIdentity:
    if params is None or params.type == "service_account":
        return DEFAULT_IDENTITY.copy()
    if not params.role_arn:
        raise InvalidRequest("execution_identity.role_arn: required when type is 'aws_role'")
    return {"type": "aws_role", "role_arn": params.role_arn}


def from_create(params: AgentCreate) -> AgentConfig:
    """Every field but ``multiagent``, which the service resolves against the database."""
    tools, servers = toolcfg.resolve_tools(params.tools or [], params.mcp_servers or [])
    return {
        "name": params.name,
        "description": blank_to_none(params.description),
        "system": blank_to_none(params.system),
        "model": resolve_model(params.model),
        "tools": tools,
        "mcp_servers": servers,
        "skills": resolve_skills(params.skills or []),
        "multiagent": None,
        "execution_identity": resolve_identity(params.execution_identity),
        "metadata": validate_metadata(params.metadata or {}),
    }


def apply_update(stored: AgentConfig, patch: AgentUpdate) -> AgentConfig:
    """The stored config with the fields the caller sent applied (``multiagent`` aside)."""
    sent = patch.model_fields_set
    config = stored.copy()
    if "name" in sent:
        config["name"] = _required(patch.name, "name")
    if "model" in sent:
        config["model"] = resolve_model(_required(patch.model, "model"), stored["model"])
    if "description" in sent:
        config["description"] = blank_to_none(patch.description)
    if "system" in sent:
        config["system"] = blank_to_none(patch.system)
    if "tools" in sent or "mcp_servers" in sent:
        config["tools"], config["mcp_servers"] = _patched_tools(stored, patch)
    if "skills" in sent:
        config["skills"] = resolve_skills(patch.skills or [])
    if "execution_identity" in sent:
        config["execution_identity"] = resolve_identity(patch.execution_identity)
    if "metadata" in sent:
        config["metadata"] = patch_metadata(stored["metadata"], patch.metadata or {})
    return config


def _required(value: T | None, field: str) -> T:
    if value is None:
        raise InvalidRequest(f"{field}: cannot be cleared")
    return value


def _patched_tools(stored: AgentConfig, patch: AgentUpdate) -> tuple[list[Tool], list[McpServer]]:
    """Full replacement of whichever of the two lists was sent, checked against the other."""
    current = toolcfg.parse_stored(stored["tools"], stored["mcp_servers"])
    tools = (patch.tools or []) if "tools" in patch.model_fields_set else (current.tools or [])
    servers = (
        (patch.mcp_servers or []) if "mcp_servers" in patch.model_fields_set else (current.mcp_servers or [])
    )
    return toolcfg.resolve_tools(tools, servers)
