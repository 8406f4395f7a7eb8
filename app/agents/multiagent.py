"""``multiagent``: rosters resolved to pinned agent versions, and expanded for session snapshots.

Roster entries (an id string, ``{type:"agent", id, version?}``, ``{type:"self"}``) resolve to
``{type:"agent", id, version}``; an omitted version pins the latest one at save time. A referenced
agent must exist, must not be archived and must not have ``multiagent`` itself (depth limit 1).
``self`` pins the version being saved; the service re-pins it each time a new version is made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from app.agents import repository
from app.agents.schemas import (
    CoordinatorParams,
    DelegationParams,
    Multiagent20261001Params,
    MultiagentParam,
    RosterEntryParams,
)
from app.errors import InvalidRequest
from app.shared.agent_config import (
    AdvisorEntry,
    AdvisorSetting,
    AgentConfig,
    AgentReference,
    Coordinator,
    Delegation,
    Multiagent20261001,
    SessionAgent,
    SessionMultiagent,
    SkillRef,
    StoredMultiagent,
)
from app.skills import references as skill_refs

SelfRef = tuple[str, int]
Stored20261001 = Multiagent20261001[AgentReference]
StoredDelegation = Delegation[AgentReference]


def _fail(where: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{where}: {message}")


async def resolve(
    db: AsyncSession, params: MultiagentParam | None, stored: StoredMultiagent | None, self_ref: SelfRef
) -> StoredMultiagent | None:
    """The resolved ``multiagent``; a ``multiagent_20261001`` sent over a stored one is merged."""
    if params is None:
        return None
    if isinstance(params, CoordinatorParams):
        agents = await _roster(db, params.agents, self_ref, "multiagent.agents", coordinator=True)
        return {"type": "coordinator", "agents": agents}
    base = stored if stored is not None and stored["type"] == "multiagent_20261001" else None
    return await _resolve_20261001(db, params, base, self_ref)


def repin_self(
    multiagent: StoredMultiagent | None, self_ref: SelfRef, version: int
) -> StoredMultiagent | None:
    """``multiagent`` with references to ``self_ref`` moved to ``version``."""
    if multiagent is None:
        return None

    def repin(entry: AgentReference) -> AgentReference:
        is_self = (entry["id"], entry["version"]) == self_ref
        return {**entry, "version": version} if is_self else entry

    if multiagent["type"] == "coordinator":
        agents = [repin(e) if e["type"] == "agent" else e for e in multiagent["agents"]]
        return {**multiagent, "agents": agents}
    return {
        **multiagent,
        "subagents": _map_predefined(multiagent["subagents"], repin),
        "workflows": _map_predefined(multiagent["workflows"], repin),
    }


def _map_predefined(
    delegation: StoredDelegation, change: Callable[[AgentReference], AgentReference]
) -> StoredDelegation:
    if delegation["type"] != "enabled":
        return delegation
    return {**delegation, "predefined_agents": [change(e) for e in delegation["predefined_agents"]]}


async def _resolve_20261001(
    db: AsyncSession, params: Multiagent20261001Params, base: Stored20261001 | None, self_ref: SelfRef
) -> Stored20261001:
    sent = params.model_fields_set
    advisor: AdvisorSetting = base["advisor"] if base is not None and "advisor" not in sent else _disabled()
    if params.advisor is not None and params.advisor.type == "enabled":
        if not params.advisor.model:
            raise _fail("multiagent.advisor.model", "required when the advisor is enabled")
        advisor = {"type": "enabled", "model": params.advisor.model}
    subagents = await _delegation(
        db, params.subagents, "subagents" in sent, base["subagents"] if base else None, self_ref,
        "multiagent.subagents",
    )  # fmt: skip
    workflows = await _delegation(
        db, params.workflows, "workflows" in sent, base["workflows"] if base else None, self_ref,
        "multiagent.workflows",
    )  # fmt: skip
    return {"type": "multiagent_20261001", "advisor": advisor, "subagents": subagents, "workflows": workflows}


def _disabled() -> AdvisorSetting:
    return {"type": "disabled"}


async def _delegation(
    db: AsyncSession,
    params: DelegationParams | None,
    sent: bool,
    base: StoredDelegation | None,
    self_ref: SelfRef,
    where: str,
) -> StoredDelegation:
    """One of ``subagents``/``workflows``: omitted keeps the stored value, null takes the default
    (enabled), and an enabled object is merged into a stored enabled one level by level."""
    if not sent:
        return base if base is not None else _enabled()
    if params is None:
        return _enabled()
    if params.type == "disabled":
        return {"type": "disabled"}
    stored = base if base is not None and base["type"] == "enabled" else None
    inline = _inline(params, stored)
    predefined: list[AgentReference] = stored["predefined_agents"] if stored else []
    if "predefined_agents" in params.model_fields_set:
        entries = params.predefined_agents or []
        roster = await _roster(db, entries, self_ref, f"{where}.predefined_agents", coordinator=False)
        # Without a coordinator an advisor entry was refused: the roster holds references only.
        predefined = [entry for entry in roster if entry["type"] == "agent"]
    if inline == "disabled" and not predefined:
        raise _fail(
            f"{where}.predefined_agents", "must name at least one agent when inline_agents is disabled"
        )
    return _enabled(inline, predefined)


def _enabled(
    inline: Literal["enabled", "disabled"] = "enabled", predefined: list[AgentReference] | None = None
) -> StoredDelegation:
    return {"type": "enabled", "inline_agents": {"type": inline}, "predefined_agents": predefined or []}


def _inline(params: DelegationParams, stored: StoredDelegation | None) -> Literal["enabled", "disabled"]:
    if "inline_agents" in params.model_fields_set:
        return params.inline_agents.type if params.inline_agents else "enabled"
    return stored["inline_agents"]["type"] if stored else "enabled"


async def _roster(
    db: AsyncSession,
    entries: Sequence[RosterEntryParams],
    self_ref: SelfRef,
    where: str,
    *,
    coordinator: bool,
) -> list[AgentReference | AdvisorEntry]:
    resolved: list[AgentReference | AdvisorEntry] = []
    seen: set[str] = set()
    advisors = 0
    for i, entry in enumerate(entries):
        at = f"{where}[{i}]"
        if entry.type == "advisor":
            advisors += 1
            resolved.append(_advisor(entry, at, coordinator, advisors))
            continue
        ref = await _reference(db, entry, self_ref, at)
        if ref["id"] in seen:
            raise _fail(at, f"agent {ref['id']} appears more than once (entries must name distinct agents)")
        seen.add(ref["id"])
        resolved.append(ref)
    return resolved


def _advisor(entry: RosterEntryParams, at: str, coordinator: bool, count: int) -> AdvisorEntry:
    if not coordinator:
        raise _fail(f"{at}.type", "must be 'agent' or 'self'")
    if count > 1:
        raise _fail(at, "at most one advisor entry is allowed")
    if not entry.model:
        raise _fail(f"{at}.model", "required for an advisor entry")
    return {"type": "advisor", "model": entry.model}


async def _reference(
    db: AsyncSession, entry: RosterEntryParams, self_ref: SelfRef, at: str
) -> AgentReference:
    if entry.type == "self":
        return {"type": "agent", "id": self_ref[0], "version": self_ref[1]}
    if not entry.id:
        raise _fail(f"{at}.id", "required")
    agent = await repository.get(db, entry.id)
    if agent is None:
        raise _fail(f"{at}.id", f"agent {entry.id} not found")
    if agent.archived_at is not None:
        raise _fail(f"{at}.id", f"agent {entry.id} is archived")
    version = entry.version or agent.version
    row = await repository.get_version(db, entry.id, version)
    if row is None:
        raise _fail(f"{at}.version", f"version {version} of agent {entry.id} not found")
    if row.config.get("multiagent") is not None:
        raise _fail(
            f"{at}.id", f"agent {entry.id} has multiagent set itself (rosters are limited to depth 1)"
        )
    return {"type": "agent", "id": entry.id, "version": version}


# --- session snapshots --------------------------------------------------------------------------


async def expand_for_session(
    db: AsyncSession, multiagent: StoredMultiagent | None
) -> SessionMultiagent | None:
    """The session form: each ``{type:"agent", id, version}`` becomes that version's full definition,
    with its skills pinned to versions as the session's own are."""
    if multiagent is None:
        return None
    if multiagent["type"] == "coordinator":
        agents = [
            await _expand(db, entry) if entry["type"] == "agent" else entry for entry in multiagent["agents"]
        ]
        coordinator: Coordinator[SessionAgent] = {"type": "coordinator", "agents": agents}
        return coordinator
    return {
        "type": "multiagent_20261001",
        "advisor": multiagent["advisor"],
        "subagents": await _expand_delegation(db, multiagent["subagents"]),
        "workflows": await _expand_delegation(db, multiagent["workflows"]),
    }


async def _expand_delegation(db: AsyncSession, delegation: StoredDelegation) -> Delegation[SessionAgent]:
    if delegation["type"] != "enabled":
        return {"type": delegation["type"]}
    agents = [await _expand(db, entry) for entry in delegation["predefined_agents"]]
    return {"type": "enabled", "inline_agents": delegation["inline_agents"], "predefined_agents": agents}


async def _expand(db: AsyncSession, entry: AgentReference) -> SessionAgent:
    row = await repository.get_version(db, entry["id"], entry["version"])
    if row is None:  # versions are never deleted; a missing one is a broken invariant
        raise LookupError(f"agent {entry['id']} version {entry['version']} is missing")
    skills = await skill_refs.pin_session_skills(
        db, row.config["skills"], prefix=f"agent.multiagent[{entry['id']}]."
    )
    return definition(entry["id"], entry["version"], row.config, skills)


def definition(agent_id: str, version: int, config: AgentConfig, skills: list[SkillRef]) -> SessionAgent:
    """A version's definition as a session (or a thread) runs it, with ``skills`` pinned."""
    return {
        "type": "agent",
        "id": agent_id,
        "version": version,
        "name": config["name"],
        "description": config["description"],
        "system": config["system"],
        "model": config["model"],
        "tools": config["tools"],
        "mcp_servers": config["mcp_servers"],
        "skills": skills,
        "execution_identity": config["execution_identity"],
    }
