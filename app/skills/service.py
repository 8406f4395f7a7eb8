"""Skills: custom skills and their immutable versions. Services only flush.

A skill's name is fixed by its first upload; each version holds its files in the content store
(``app/storage``: one reference per file, the bytes on the blob backend like every file's). A
skill always keeps at least one version: deleting the skill deletes them all, and its last
version cannot be deleted on its own.

Versions are addressed by id (``skill_version_...``), by their epoch-microseconds name (what
clients sending the ``skills-2025-10-02`` beta use) or, where reading, as ``latest``.
Agents and sessions use ``check_agent_skills`` and ``pin_session_skills`` (in ``references``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.db import models
from app.db.base import utcnow
from app.errors import InvalidRequest, NotFound
from app.ids import new_id
from app.shared.pagination import (
    Cursor,
    decode_cursor,
    decode_time_key,
    encode_cursor,
    newest_first_page,
)
from app.shared.text import check_single_line
from app.shared.uploads import UploadedFile, UploadedForm
from app.skills import repository
from app.skills.archive import ArchiveFile, build_archive
from app.skills.bundle import Limits, SkillBundle, read_bundle
from app.skills.schemas import (
    Skill,
    SkillArchive,
    SkillDeleted,
    SkillPage,
    SkillSource,
    SkillVersion,
    SkillVersionDeleted,
    SkillVersionPage,
)
from app.storage import service as storage
from app.storage.blobs import BlobBackend

LATEST = "latest"
FILE_FIELDS = ("files[]", "files")
MAX_DISPLAY_NAME_CHARS = 255
SOURCES = ("custom", "anthropic")


def _view(row: models.Skill) -> Skill:
    return Skill(
        id=row.id,
        display_name=row.display_name,
        latest_version_id=row.latest_version_id,
        source=SkillSource(type="custom"),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def version_view(row: models.SkillVersion) -> SkillVersion:
    return SkillVersion(
        id=row.id,
        skill_id=row.skill_id,
        name=row.name,
        description=row.description,
        version=row.version,
        directory=row.name,
        created_at=row.created_at,
    )


async def _get_row(db: AsyncSession, skill_id: str, *, lock: bool = False) -> models.Skill:
    row = await repository.get(db, skill_id, lock=lock)
    if row is None:
        raise NotFound(f"Skill {skill_id} not found.")
    return row


async def _get_version(db: AsyncSession, skill: models.Skill, ref: str) -> models.SkillVersion:
    version_id = skill.latest_version_id if ref == LATEST else ref
    row = await repository.find_version(db, skill.id, version_id)
    if row is None:
        raise NotFound(f"Skill {skill.id} has no version {ref!r}.")
    return row


# --- uploads ------------------------------------------------------------------------------------


def _files(form: UploadedForm) -> tuple[UploadedFile, ...]:
    if any(field in form.fields for field in FILE_FIELDS):
        raise InvalidRequest(
            "files: a file part has no filename; send each file with its path, e.g. my-skill/SKILL.md"
        )
    for upload in form.files:
        if upload.field not in FILE_FIELDS:
            raise InvalidRequest(
                "files: send the skill's files as `files[]` parts "
                f"(got a file in a part named {upload.field!r})"
            )
    return form.files


def _display_name(form: UploadedForm) -> str | None:
    value = form.fields.get("display_name", "").strip()
    if len(value) > MAX_DISPLAY_NAME_CHARS:
        raise InvalidRequest(f"display_name: at most {MAX_DISPLAY_NAME_CHARS} characters (got {len(value)})")
    return check_single_line(value, "display_name") or None


@dataclass(frozen=True)
class SkillUpload:
    """A checked upload: the skill's files and, for a new skill, its display name if given."""

    bundle: SkillBundle
    display_name: str | None


async def check_upload(form: UploadedForm, limits: Limits) -> SkillUpload:
    """Check an upload before any transaction starts (unpacking and parsing run off the event loop)."""
    display_name = _display_name(form)
    bundle = await asyncio.to_thread(read_bundle, _files(form), limits)
    return SkillUpload(bundle=bundle, display_name=display_name)


async def _version_name(db: AsyncSession, skill_id: str) -> str:
    """Epoch microseconds, strictly increasing within a skill even when two land in one tick."""
    now = time.time_ns() // 1000
    highest = await repository.highest_version_name(db, skill_id)
    return f"{max(now, int(highest) + 1 if highest else 0):016d}"


async def _add_version(
    db: AsyncSession, blobs: BlobBackend, skill: models.Skill, bundle: SkillBundle, now: datetime
) -> models.SkillVersion:
    row = models.SkillVersion(
        id=new_id("skill_version"),
        skill_id=skill.id,
        version=await _version_name(db, skill.id),
        name=skill.name,
        description=bundle.header.description,
        size_bytes=bundle.size_bytes,
        file_count=len(bundle.files),
        created_at=now,
    )
    repository.add(db, row)
    await db.flush()
    for file in bundle.files:
        ref = await storage.put_bytes(db, blobs, file.data)
        repository.add(
            db,
            models.SkillFile(
                version_id=row.id, path=file.path, sha256=ref.sha256, size_bytes=ref.size,
                executable=file.executable,
            ),
        )  # fmt: skip
    await db.flush()
    skill.latest_version_id = row.id
    skill.updated_at = now
    return row


async def create_skill(db: AsyncSession, blobs: BlobBackend, upload: SkillUpload) -> Skill:
    """A new skill from an upload; its name and default display name come from SKILL.md."""
    bundle = upload.bundle
    now = utcnow()
    skill = models.Skill(
        id=new_id("skill"),
        name=bundle.header.name,
        display_name=upload.display_name or bundle.header.name,
        source="custom",
        latest_version_id="",
        created_at=now,
        updated_at=now,
    )
    repository.add(db, skill)
    await db.flush()
    await _add_version(db, blobs, skill, bundle, now)
    await db.flush()
    return _view(skill)


async def create_version(
    db: AsyncSession, blobs: BlobBackend, skill_id: str, upload: SkillUpload
) -> SkillVersion:
    """A new version of ``skill_id``; its SKILL.md must keep the skill's name."""
    skill = await _get_row(db, skill_id, lock=True)
    bundle = upload.bundle
    if bundle.header.name != skill.name:
        raise InvalidRequest(
            f"SKILL.md: `name` is {bundle.header.name!r}, but this skill is named {skill.name!r} "
            "(a skill's name is fixed by its first version)"
        )
    row = await _add_version(db, blobs, skill, bundle, utcnow())
    await db.flush()
    return version_view(row)


# --- skills -------------------------------------------------------------------------------------


async def get_skill(db: AsyncSession, skill_id: str) -> Skill:
    return _view(await _get_row(db, skill_id))


async def list_skills(db: AsyncSession, *, limit: int, page: str | None, source: str | None) -> SkillPage:
    """Newest first. Only custom skills exist here: ``source=anthropic`` lists nothing."""
    if source is not None and source not in SOURCES:
        raise InvalidRequest(f"source: expected one of {', '.join(SOURCES)}, got {source!r}")
    if source == "anthropic":
        return SkillPage(data=[], has_more=False, next_page=None)
    after = decode_time_key(decode_cursor(page, "desc"))
    rows = await repository.list_skills(db, after=after, limit=limit + 1)
    shown, next_page = newest_first_page(rows, limit)
    return SkillPage(data=[_view(r) for r in shown], has_more=next_page is not None, next_page=next_page)


async def _release_files(db: AsyncSession, digests: list[str]) -> None:
    for sha256 in digests:
        await storage.release(db, sha256)


async def delete_skill(db: AsyncSession, skill_id: str) -> SkillDeleted:
    """Delete the skill with all its versions and files."""
    skill = await _get_row(db, skill_id, lock=True)
    digests = await repository.file_digests(db, skill_id=skill.id)
    await repository.delete_skill(db, skill.id)
    await _release_files(db, digests)
    await db.flush()
    return SkillDeleted(id=skill_id)


# --- versions -----------------------------------------------------------------------------------


async def get_version(db: AsyncSession, skill_id: str, ref: str) -> SkillVersion:
    skill = await _get_row(db, skill_id)
    return version_view(await _get_version(db, skill, ref))


async def list_versions(db: AsyncSession, skill_id: str, *, limit: int, page: str | None) -> SkillVersionPage:
    """Newest first."""
    skill = await _get_row(db, skill_id)
    cursor = decode_cursor(page, "desc")
    before = cursor.key[0] if cursor is not None and cursor.key else None
    if before is not None and not (isinstance(before, str) and before.isdigit()):
        raise InvalidRequest("invalid page cursor")
    rows = await repository.list_versions(db, skill.id, before=before, limit=limit + 1)
    next_page = encode_cursor(Cursor("desc", (rows[limit - 1].version,))) if len(rows) > limit else None
    return SkillVersionPage(
        data=[version_view(r) for r in rows[:limit]], has_more=next_page is not None, next_page=next_page
    )


async def delete_version(db: AsyncSession, skill_id: str, ref: str) -> SkillVersionDeleted:
    """Delete one version; the skill's newest remaining version becomes its latest."""
    skill = await _get_row(db, skill_id, lock=True)
    if ref == LATEST:
        raise InvalidRequest("version: name the version to delete by its id, not 'latest'")
    row = await _get_version(db, skill, ref)
    if await repository.count_versions(db, skill.id) <= 1:
        raise InvalidRequest(
            f"Skill {skill.id} has only this version; a skill keeps at least one (delete the skill instead)"
        )
    digests = await repository.file_digests(db, version_id=row.id)
    await repository.delete_version(db, row.id)
    await _release_files(db, digests)
    newest = await repository.newest_version(db, skill.id)
    if newest is None:  # another version was counted above, under the skill's lock
        raise LookupError(f"skill {skill.id} lost its last version")
    skill.latest_version_id = newest.id
    skill.updated_at = utcnow()
    await db.flush()
    return SkillVersionDeleted(id=row.id)


async def version_files(db: AsyncSession, blobs: BlobBackend, version_id: str) -> list[ArchiveFile]:
    """The files of a version, by path below the skill's directory (what a sandbox materialises)."""
    rows = await repository.files(db, version_id)
    contents = await storage.read_many(blobs, [r.sha256 for r in rows])
    return [ArchiveFile(path=r.path, data=contents[r.sha256], executable=r.executable) for r in rows]


async def download(db: AsyncSession, blobs: BlobBackend, skill_id: str, ref: str) -> SkillArchive:
    """The version's files as ``<name>.zip`` with every entry under ``<name>/``."""
    skill = await _get_row(db, skill_id)
    row = await _get_version(db, skill, ref)
    files = await version_files(db, blobs, row.id)
    data = await asyncio.to_thread(build_archive, row.name, files, row.created_at)
    return SkillArchive(filename=f"{row.name}.zip", data=data)
