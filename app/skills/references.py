"""Skill references on agents and in session snapshots (``{type, skill_id, version}``).

Agents may pin a version (by id or epoch name) or leave it as ``latest``; a session records the
version id each reference resolves to when it is created, so later uploads never change what a
running session loads. Anthropic's prebuilt skills are not ours to ship and are refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import models
from app.errors import InvalidRequest
from app.shared.agent_config import SkillRef
from app.skills import repository
from app.skills.service import LATEST


@dataclass(frozen=True)
class SessionSkill:
    """A skill as a session loads it: listed in the system prompt, files under ``directory``."""

    skill_id: str
    version_id: str
    name: str
    description: str

    @property
    def directory(self) -> str:
        return f"/workspace/skills/{self.name}"


def anthropic_unsupported(where: str, skill_id: str) -> InvalidRequest:
    return InvalidRequest(
        f"{where}: Anthropic's prebuilt skills (type 'anthropic', here {skill_id!r}) are not available on "
        "this self-hosted server; upload the skill's files with POST /v1/skills and reference it as "
        "{type: 'custom', skill_id}"
    )


async def _resolve(
    db: AsyncSession, skills: Sequence[SkillRef], prefix: str
) -> tuple[list[models.SkillVersion], list[str]]:
    """The version each reference resolves to now, and what is wrong with those that do not."""
    rows = await repository.get_many(db, [s["skill_id"] for s in skills])
    resolved: list[models.SkillVersion] = []
    problems: list[str] = []
    named: dict[str, str] = {}
    for i, skill in enumerate(skills):
        where = f"{prefix}skills[{i}]"
        if skill["type"] == "anthropic":
            raise anthropic_unsupported(where, skill["skill_id"])
        row = rows.get(skill["skill_id"])
        if row is None:
            problems.append(f"{where}.skill_id: skill {skill['skill_id']} not found")
            continue
        wanted = row.latest_version_id if skill["version"] == LATEST else skill["version"]
        version = await repository.find_version(db, row.id, wanted)
        if version is None:
            problems.append(f"{where}.version: skill {row.id} has no version {skill['version']!r}")
            continue
        if row.name in named:
            problems.append(
                f"{where}: skills {named[row.name]} and {row.id} are both named {row.name!r}; the skills of "
                "an agent need distinct names (each one is a directory /workspace/skills/<name>)"
            )
        named[row.name] = row.id
        resolved.append(version)
    return resolved, problems


async def check_agent_skills(db: AsyncSession, skills: Sequence[SkillRef], prefix: str = "") -> None:
    """400 unless every reference names an existing custom skill (and version, when pinned)."""
    _, problems = await _resolve(db, skills, prefix)
    if problems:
        raise InvalidRequest("; ".join(problems))


async def pin_session_skills(
    db: AsyncSession, skills: Sequence[SkillRef], prefix: str = "agent."
) -> list[SkillRef]:
    """The references with each version resolved to a version id, as a session records them."""
    resolved, problems = await _resolve(db, skills, prefix)
    if problems:
        raise InvalidRequest("Could not resolve one or more skills: " + "; ".join(problems))
    return [{"type": "custom", "skill_id": v.skill_id, "version": v.id} for v in resolved]


async def describe(db: AsyncSession, pinned: Sequence[SkillRef]) -> list[SessionSkill]:
    """What a session's system prompt lists for its pinned skills, in the agent's order.

    A version deleted since the session started is left out (its files are gone too).
    """
    versions = await repository.get_versions(db, [s["version"] for s in pinned])
    return [
        SessionSkill(skill_id=v.skill_id, version_id=v.id, name=v.name, description=v.description)
        for s in pinned
        if (v := versions.get(s["version"])) is not None
    ]
