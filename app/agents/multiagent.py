"""``multiagent``: rosters resolved to pinned agent versions, and expanded for session snapshots.

Roster entries (an id string, ``{type:"agent", id, version?}``, ``{type:"self"}``) resolve to
``{type:"agent", id, version}``; an omitted version pins the latest one at save time. A referenced
agent must exist, must not be archived and must not have ``multiagent`` itself (depth limit 1).
``self`` pins the version being saved; the service re-pins it each time a new version is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
from app.skills import references as skill_refs

SelfRef = tuple[str, int]
_DISABLED: dict[str, Any] = {"type": "disabled"}
THREAD_AGENT_FIELDS = (
    "name", "description", "system", "model", "tools", "mcp_servers", "skills", "execution_identity",
)  # fmt: skip


def _fail(where: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{where}: {message}")


async def resolve(
    db: AsyncSession, params: MultiagentParam | None, stored: dict[str, Any] | None, self_ref: SelfRef
) -> dict[str, Any] | None:
    """The resolved ``multiagent``; a ``multiagent_20261001`` sent over a stored one is merged."""
    if params is None:
        return None
    if isinstance(params, CoordinatorParams):
        agents = await _roster(db, params.agents, self_ref, "multiagent.agents", coordinator=True)
        return {"type": "coordinator", "agents": agents}
    base = stored if stored is not None and stored["type"] == "multiagent_20261001" else {}
    return await _resolve_20261001(db, params, base, self_ref)


def repin_self(multiagent: dict[str, Any] | None, self_ref: SelfRef, version: int) -> dict[str, Any] | None:
    """``multiagent`` with references to ``self_ref`` moved to ``version``."""
    if multiagent is None:
        return None

    def repin(entry: dict[str, Any]) -> dict[str, Any]:
        is_self = entry.get("type") == "agent" and (entry["id"], entry["version"]) == self_ref
        return {**entry, "version": version} if is_self else entry

    if multiagent["type"] == "coordinator":
        return {**multiagent, "agents": [repin(e) for e in multiagent["agents"]]}
    out = dict(multiagent)
    for key in ("subagents", "workflows"):
        if out[key]["type"] == "enabled":
            out[key] = {**out[key], "predefined_agents": [repin(e) for e in out[key]["predefined_agents"]]}
    return out


async def _resolve_20261001(
    db: AsyncSession, params: Multiagent20261001Params, base: dict[str, Any], self_ref: SelfRef
) -> dict[str, Any]:
    sent = params.model_fields_set
    advisor = base.get("advisor", _DISABLED) if "advisor" not in sent else _DISABLED
    if params.advisor is not None and params.advisor.type == "enabled":
        if not params.advisor.model:
            raise _fail("multiagent.advisor.model", "required when the advisor is enabled")
        advisor = {"type": "enabled", "model": params.advisor.model}
    resolved = {"type": "multiagent_20261001", "advisor": advisor}
    for key in ("subagents", "workflows"):
        given = getattr(params, key) if key in sent else None
        merged = await _delegation(db, given, key in sent, base.get(key), self_ref, f"multiagent.{key}")
        resolved[key] = merged
    return resolved


async def _delegation(
    db: AsyncSession,
    params: DelegationParams | None,
    sent: bool,
    base: dict[str, Any] | None,
    self_ref: SelfRef,
    where: str,
) -> dict[str, Any]:
    """One of ``subagents``/``workflows``: omitted keeps the stored value, null takes the default
    (enabled), and an enabled object is merged into a stored enabled one level by level."""
    if not sent:
        return base if base is not None else _enabled()
    if params is None:
        return _enabled()
    if params.type == "disabled":
        return dict(_DISABLED)
    stored = base if base is not None and base["type"] == "enabled" else None
    inline = _inline(params, stored)
    predefined: list[dict[str, Any]] = stored["predefined_agents"] if stored else []
    if "predefined_agents" in params.model_fields_set:
        entries = params.predefined_agents or []
        predefined = await _roster(db, entries, self_ref, f"{where}.predefined_agents", coordinator=False)
    if inline == "disabled" and not predefined:
        raise _fail(
            f"{where}.predefined_agents", "must name at least one agent when inline_agents is disabled"
        )
    return _enabled(inline, predefined)


def _enabled(inline: str = "enabled", predefined: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "enabled", "inline_agents": {"type": inline}, "predefined_agents": predefined or []}


def _inline(params: DelegationParams, stored: dict[str, Any] | None) -> str:
    if "inline_agents" in params.model_fields_set:
        return params.inline_agents.type if params.inline_agents else "enabled"
    return str(stored["inline_agents"]["type"]) if stored else "enabled"


async def _roster(
    db: AsyncSession,
    entries: Sequence[RosterEntryParams],
    self_ref: SelfRef,
    where: str,
    *,
    coordinator: bool,
) -> list[dict[str, Any]]:
    resolved: list[dict[str, Any]] = []
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


def _advisor(entry: RosterEntryParams, at: str, coordinator: bool, count: int) -> dict[str, Any]:
    if not coordinator:
        raise _fail(f"{at}.type", "must be 'agent' or 'self'")
    if count > 1:
        raise _fail(at, "at most one advisor entry is allowed")
    if not entry.model:
        raise _fail(f"{at}.model", "required for an advisor entry")
    return {"type": "advisor", "model": entry.model}


async def _reference(
    db: AsyncSession, entry: RosterEntryParams, self_ref: SelfRef, at: str
) -> dict[str, Any]:
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


async def expand_for_session(db: AsyncSession, multiagent: dict[str, Any] | None) -> dict[str, Any] | None:
    """The session form: each ``{type:"agent", id, version}`` becomes that version's full definition,
    with its skills pinned to versions as the session's own are."""
    if multiagent is None:
        return None
    if multiagent["type"] == "coordinator":
        return {**multiagent, "agents": [await _expand(db, entry) for entry in multiagent["agents"]]}
    out = dict(multiagent)
    for key in ("subagents", "workflows"):
        if out[key]["type"] == "enabled":
            agents = [await _expand(db, entry) for entry in out[key]["predefined_agents"]]
            out[key] = {**out[key], "predefined_agents": agents}
    return out


async def _expand(db: AsyncSession, entry: dict[str, Any]) -> dict[str, Any]:
    if entry["type"] != "agent":
        return entry
    row = await repository.get_version(db, entry["id"], entry["version"])
    if row is None:  # versions are never deleted; a missing one is a broken invariant
        raise LookupError(f"agent {entry['id']} version {entry['version']} is missing")
    fields = {field: row.config[field] for field in THREAD_AGENT_FIELDS}
    fields["skills"] = await skill_refs.pin_session_skills(
        db, fields["skills"], prefix=f"agent.multiagent[{entry['id']}]."
    )
    return {"type": "agent", "id": entry["id"], "version": entry["version"]} | fields
