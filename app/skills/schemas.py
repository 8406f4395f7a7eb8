"""Response schemas of /v1/skills, after the SDK's ``BetaSkill`` and ``BetaSkillVersion``.

Requests are multipart uploads, read by the HTTP layer into ``app.shared.uploads.UploadedForm``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class SkillSource(BaseModel):
    type: Literal["custom", "anthropic", "anthropic_example", "plugin"]


class Skill(BaseModel):
    type: Literal["skill"] = "skill"
    id: str
    display_name: str
    latest_version_id: str
    source: SkillSource
    created_at: datetime
    updated_at: datetime


class SkillVersion(BaseModel):
    """``BetaSkillVersion``, plus ``version`` (the epoch timestamp `skills-2025-10-02` clients
    address it by) and ``directory``, which older SDKs read."""

    type: Literal["skill_version"] = "skill_version"
    id: str
    skill_id: str
    name: str
    description: str
    version: str
    directory: str
    created_at: datetime


class SkillPage(BaseModel):
    data: list[Skill]
    has_more: bool
    next_page: str | None


class SkillVersionPage(BaseModel):
    data: list[SkillVersion]
    has_more: bool
    next_page: str | None


class SkillDeleted(BaseModel):
    type: Literal["skill_deleted"] = "skill_deleted"
    id: str


class SkillVersionDeleted(BaseModel):
    type: Literal["skill_version_deleted"] = "skill_version_deleted"
    id: str


class SkillArchive(BaseModel):
    """A version's files as a zip named after the skill."""

    filename: str
    data: bytes
