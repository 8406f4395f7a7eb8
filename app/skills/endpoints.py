"""/v1/skills and /v1/skills/{skill_id}/versions: multipart uploads, versions, zip downloads."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from app.api.deps import BlobsDep, ReadSession, SettingsDep, WriteSession
from app.api.uploads import read_multipart
from app.config import Settings
from app.skills import service
from app.skills.bundle import Limits
from app.skills.schemas import (
    Skill,
    SkillDeleted,
    SkillPage,
    SkillVersion,
    SkillVersionDeleted,
    SkillVersionPage,
)

router = APIRouter(prefix="/skills", tags=["skills"])

Limit = Annotated[int, Query(ge=1, le=1000)]


def _limits(settings: Settings) -> Limits:
    return Limits(max_bytes=settings.skills_max_upload_bytes, max_files=settings.skills_max_files)


async def _upload(request: Request, settings: SettingsDep) -> service.SkillUpload:
    limits = _limits(settings)
    form = await read_multipart(request, max_content_bytes=limits.max_bytes, max_files=limits.max_files)
    return await service.check_upload(form, limits)


# Declared before the database session: the body is read and checked before the transaction starts.
Upload = Annotated[service.SkillUpload, Depends(_upload)]


@router.post("", response_model=Skill)
async def create_skill(upload: Upload, db: WriteSession, blobs: BlobsDep) -> Skill:
    """Create a skill from `files[]` parts (one directory with SKILL.md at its root) and `display_name`."""
    return await service.create_skill(db, blobs, upload)


@router.get("", response_model=SkillPage)
async def list_skills(
    db: ReadSession, limit: Limit = 20, page: str | None = None, source: str | None = None
) -> SkillPage:
    """List skills, newest first."""
    return await service.list_skills(db, limit=limit, page=page, source=source)


@router.get("/{skill_id}", response_model=Skill)
async def retrieve_skill(skill_id: str, db: ReadSession) -> Skill:
    """Retrieve a skill."""
    return await service.get_skill(db, skill_id)


@router.delete("/{skill_id}", response_model=SkillDeleted)
async def delete_skill(skill_id: str, db: WriteSession) -> SkillDeleted:
    """Delete a skill and all its versions."""
    return await service.delete_skill(db, skill_id)


@router.post("/{skill_id}/versions", response_model=SkillVersion)
async def create_version(skill_id: str, upload: Upload, db: WriteSession, blobs: BlobsDep) -> SkillVersion:
    """Upload a new version of a skill (its SKILL.md keeps the skill's name)."""
    return await service.create_version(db, blobs, skill_id, upload)


@router.get("/{skill_id}/versions", response_model=SkillVersionPage)
async def list_versions(
    skill_id: str, db: ReadSession, limit: Limit = 20, page: str | None = None
) -> SkillVersionPage:
    """List a skill's versions, newest first."""
    return await service.list_versions(db, skill_id, limit=limit, page=page)


@router.get("/{skill_id}/versions/{version}", response_model=SkillVersion)
async def retrieve_version(skill_id: str, version: str, db: ReadSession) -> SkillVersion:
    """Retrieve a version by id, by epoch timestamp, or `latest`."""
    return await service.get_version(db, skill_id, version)


@router.delete("/{skill_id}/versions/{version}", response_model=SkillVersionDeleted)
async def delete_version(skill_id: str, version: str, db: WriteSession) -> SkillVersionDeleted:
    """Delete a version (not a skill's only one)."""
    return await service.delete_version(db, skill_id, version)


@router.get("/{skill_id}/versions/{version}/content", response_class=Response)
async def download_version(skill_id: str, version: str, db: ReadSession, blobs: BlobsDep) -> Response:
    """Download a version's files as a zip whose entries sit under the skill's name."""
    archive = await service.download(db, blobs, skill_id, version)
    return Response(
        archive.data,
        media_type="application/zip",
        headers={"content-disposition": f'attachment; filename="{archive.filename}"'},
    )
