"""Agents: versioned configurations. Services only flush; the caller owns the transaction.

Every change that alters the configuration makes a new immutable ``AgentVersion``; an update that
changes nothing makes no version and returns the current one. Sessions use
``resolve_session_agent`` and ``resolve_tools_update`` (below) and never the repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TypeVar

from pydantic import JsonValue
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents import multiagent, repository, snapshot
from app.agents import tools as toolcfg
from app.agents.schemas import Agent, AgentCreate, AgentPage, AgentUpdate, SessionAgentRef, ToolsPatch
from app.db import models
from app.db.base import utcnow
from app.db.raw import RawReads, json_value, timestamp
from app.errors import Conflict, InvalidRequest, NotFound
from app.ids import new_id
from app.shared.agent_config import AgentConfig, SessionAgent
from app.shared.pagination import Cursor, decode_cursor, decode_time_key, encode_cursor, time_key
from app.shared.rendering import model_json
from app.shared.validation import INT32_MAX, parse
from app.skills import references as skill_refs

CONFLICT_MESSAGE = "Concurrent modification detected. Please fetch the latest version and retry."
# A session's snapshot and an agent version's config share the tools keys that ``_replace_tools`` sets.
ConfigT = TypeVar("ConfigT", AgentConfig, SessionAgent)
SKILLS_NEED_READ = (
    "Missing required tool: skills require the read tool to be usable (enabled and not always_deny) "
    "on the session's `agent_toolset`"
)


def _view(agent: models.Agent, row: models.AgentVersion) -> Agent:
    # An older version reports when it was saved; the latest also moves with archive.
    updated_at = agent.updated_at if row.version == agent.version else row.created_at
    return Agent.model_validate(
        {
            **row.config,
            "id": agent.id,
            "version": row.version,
            "created_at": agent.created_at,
            "updated_at": updated_at,
            "archived_at": agent.archived_at,
        }
    )


async def _get_row(db: AsyncSession, agent_id: str, *, lock: bool = False) -> models.Agent:
    agent = await (repository.get_for_update if lock else repository.get)(db, agent_id)
    if agent is None:
        raise NotFound(f"Agent {agent_id} not found.")
    return agent


async def _version(db: AsyncSession, agent: models.Agent, version: int | None = None) -> models.AgentVersion:
    row = await repository.get_version(db, agent.id, version or agent.version)
    if row is None:
        raise NotFound("Agent version not found.")
    return row


def _new_version(agent: models.Agent, config: AgentConfig) -> models.AgentVersion:
    return models.AgentVersion(
        agent_id=agent.id, version=agent.version, config=config, created_at=agent.updated_at
    )


async def create(db: AsyncSession, params: AgentCreate) -> Agent:
    now = utcnow()
    agent = models.Agent(id=new_id("agent"), version=1, created_at=now, updated_at=now, archived_at=None)
    config = snapshot.from_create(params)
    await skill_refs.check_agent_skills(db, config["skills"])
    config["multiagent"] = await multiagent.resolve(db, params.multiagent, None, (agent.id, 1))
    row = _new_version(agent, config)
    repository.add(db, agent)
    await db.flush()
    repository.add(db, row)
    await db.flush()
    return _view(agent, row)


async def get(db: AsyncSession, agent_id: str, version: int | None = None) -> Agent:
    agent = await _get_row(db, agent_id)
    return _view(agent, await _version(db, agent, version))


async def render(raw: RawReads, agent_id: str, version: int | None = None) -> bytes:
    """The body of GET /v1/agents/{agent_id}: ``get``'s agent as JSON, read in one statement."""
    row = await repository.view_row(raw, agent_id, version)
    if row is None:
        raise NotFound(f"Agent {agent_id} not found.")
    latest, created_at, updated_at, archived_at, found, config, saved_at = row
    if found is None:
        raise NotFound("Agent version not found.")
    view = {
        **json_value(config),
        "id": agent_id,
        "version": found,
        "created_at": timestamp(created_at),
        "updated_at": timestamp(updated_at if found == latest else saved_at),
        "archived_at": timestamp(archived_at),
    }
    return model_json(Agent.model_validate(view))


async def update(db: AsyncSession, agent_id: str, patch: AgentUpdate) -> Agent:
    """Apply ``patch``; a stale ``version`` precondition is a 409 that is not worth retrying."""
    agent = await _get_row(db, agent_id, lock=True)
    if agent.archived_at is not None:
        raise InvalidRequest("Cannot modify archived agent")
    if patch.version is not None and patch.version != agent.version:
        raise Conflict(CONFLICT_MESSAGE)
    current = await _version(db, agent)
    config = snapshot.apply_update(current.config, patch)
    if "skills" in patch.model_fields_set:
        await skill_refs.check_agent_skills(db, config["skills"])
    self_ref = (agent.id, agent.version)
    if "multiagent" in patch.model_fields_set:
        config["multiagent"] = await multiagent.resolve(
            db, patch.multiagent, current.config["multiagent"], self_ref
        )
    if config == current.config:
        return _view(agent, current)
    config["multiagent"] = multiagent.repin_self(config["multiagent"], self_ref, agent.version + 1)
    agent.version += 1
    agent.updated_at = utcnow()
    row = _new_version(agent, config)
    repository.add(db, row)
    await db.flush()
    return _view(agent, row)


async def archive(db: AsyncSession, agent_id: str) -> Agent:
    """Archive for good (idempotent): the agent stays readable but can no longer change or be used."""
    agent = await _get_row(db, agent_id, lock=True)
    if agent.archived_at is None:
        agent.archived_at = agent.updated_at = utcnow()
        await db.flush()
    return _view(agent, await _version(db, agent))


def _after(page: str | None) -> tuple[datetime, str] | None:
    return decode_time_key(decode_cursor(page, "desc"))


async def list_agents(
    db: AsyncSession, *, created_at: dict[str, datetime], include_archived: bool, limit: int, page: str | None
) -> AgentPage:
    """Newest first, ``limit`` per page, ``next_page`` null on the last page."""
    rows = await repository.list_page(
        db, created_at=created_at, include_archived=include_archived, after=_after(page), limit=limit + 1
    )
    data = [_view(agent, row) for agent, row in rows[:limit]]
    next_page = None
    if len(rows) > limit:
        last = rows[limit - 1][0]
        next_page = encode_cursor(Cursor("desc", time_key(last.created_at, last.id)))
    return AgentPage(data=data, next_page=next_page)


async def list_versions(db: AsyncSession, agent_id: str, *, limit: int, page: str | None) -> AgentPage:
    """Every version of one agent, newest first."""
    agent = await _get_row(db, agent_id)
    cursor = decode_cursor(page, "desc")
    before = cursor.key[0] if cursor is not None and cursor.key else None
    if before is not None and not (isinstance(before, int) and before <= INT32_MAX):
        raise InvalidRequest("invalid page cursor")
    rows = await repository.list_versions(db, agent_id, before=before, limit=limit + 1)
    next_page = encode_cursor(Cursor("desc", (rows[limit - 1].version,))) if len(rows) > limit else None
    return AgentPage(data=[_view(agent, row) for row in rows[:limit]], next_page=next_page)


# --- the interface sessions use -----------------------------------------------------------------


async def resolve_session_agent(
    db: AsyncSession,
    ref: str | Mapping[str, JsonValue],  # the raw request value
) -> tuple[str, int, SessionAgent]:
    """Resolve a session-create ``agent`` parameter to ``(agent_id, version, snapshot)``.

    ``ref`` is the raw JSON value the client sent: an agent id (latest version),
    ``{type:"agent", id, version?}`` or ``{type:"agent_with_overrides", id, version?, model?,
    system?, tools?, mcp_servers?, skills?}``; pass a dict holding only the keys the client sent,
    since an omitted override inherits while null clears. The snapshot is the session's
    ``agent`` object (``BetaManagedAgentsSessionAgent``) with roster agents expanded.

    Raises NotFound for an unknown agent or version, InvalidRequest (messages start with
    ``agent``) for an archived agent, invalid overrides, or skills without the ``read`` tool.
    """
    params = parse(SessionAgentRef, {"type": "agent", "id": ref} if isinstance(ref, str) else ref, "agent")
    agent, row = await repository.get_with_version(db, params.id, params.version or None)
    if agent is None:
        raise NotFound(f"agent: Agent {params.id} not found.")
    if row is None:
        raise NotFound(f"agent.version: {params.version} not found")
    if agent.archived_at is not None:
        raise InvalidRequest(f"agent: Agent {agent.id} is archived.")
    config = (
        _apply_overrides(row.config, params) if params.type == "agent_with_overrides" else row.config.copy()
    )
    _check_skills_have_read(config)
    return agent.id, row.version, await _session_snapshot(db, agent.id, row.version, config)


def resolve_tools_update(
    snapshot_: SessionAgent,
    update: Mapping[str, JsonValue],  # the keys the client sent, validated here
) -> SessionAgent:
    """A session snapshot with ``sessions.update(agent={tools?, mcp_servers?})`` applied.

    ``update`` holds only the keys the client sent; each replaces the list whole (null or [] clears)
    and the result is checked with the agent rules (messages start with ``agent.``).
    """
    updated = _replace_tools(snapshot_, parse(ToolsPatch, dict(update), "agent"))
    _check_skills_have_read(updated)
    return updated


def _replace_tools(config: ConfigT, patch: ToolsPatch) -> ConfigT:
    current = toolcfg.parse_stored(config["tools"], config["mcp_servers"])
    sent = patch.model_fields_set
    tools = patch.tools if "tools" in sent else current.tools
    servers = patch.mcp_servers if "mcp_servers" in sent else current.mcp_servers
    resolved_tools, resolved_servers = toolcfg.resolve_tools(tools or [], servers or [], prefix="agent")
    out = config.copy()
    out["tools"], out["mcp_servers"] = resolved_tools, resolved_servers
    return out


def _apply_overrides(config: AgentConfig, params: SessionAgentRef) -> AgentConfig:
    """Overrides: omitted inherits, null or [] clears, a value replaces whole (never merged)."""
    sent = params.model_fields_set
    out = config.copy()
    if "model" in sent:
        if params.model is None:
            raise InvalidRequest("agent.model: cannot be null", error_code="agent_model_required")
        # A session runs at the model's default effort: an effort in the override is ignored.
        out["model"] = snapshot.resolve_model(params.model.model_copy(update={"effort": None}))
    if "system" in sent:
        out["system"] = snapshot.blank_to_none(params.system)
    if "tools" in sent or "mcp_servers" in sent:
        given = {key: getattr(params, key) for key in ("tools", "mcp_servers") if key in sent}
        out = _replace_tools(out, ToolsPatch.model_validate(given))
    if "skills" in sent:
        out["skills"] = snapshot.resolve_skills(params.skills or [], prefix="agent.")
    return out


def _check_skills_have_read(config: AgentConfig | SessionAgent) -> None:
    if config["skills"] and not toolcfg.read_tool_enabled(config["tools"]):
        raise InvalidRequest(f"agent.tools: {SKILLS_NEED_READ}")


async def _session_snapshot(
    db: AsyncSession, agent_id: str, version: int, config: AgentConfig
) -> SessionAgent:
    # `latest` is resolved now: the session keeps these versions whatever is uploaded later.
    skills = await skill_refs.pin_session_skills(db, config["skills"])
    snapshot_ = multiagent.definition(agent_id, version, config, skills)
    snapshot_["multiagent"] = await multiagent.expand_for_session(db, config["multiagent"])
    return snapshot_
