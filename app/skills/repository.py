"""Skill, version and file rows. Queries only; the caller owns the transaction."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db.models import Skill, SkillFile, SkillVersion


def add(db: AsyncSession, row: Skill | SkillVersion | SkillFile) -> None:
    db.add(row)


async def get(db: AsyncSession, skill_id: str, *, lock: bool = False) -> Skill | None:
    query = select(Skill).where(Skill.id == skill_id)
    return await db.scalar(query.with_for_update() if lock else query)


async def get_many(db: AsyncSession, skill_ids: Sequence[str]) -> dict[str, Skill]:
    if not skill_ids:
        return {}
    rows = await db.scalars(select(Skill).where(Skill.id.in_(skill_ids)))
    return {row.id: row for row in rows}


async def find_version(db: AsyncSession, skill_id: str, ref: str) -> SkillVersion | None:
    """A version of ``skill_id`` by its id or by its epoch-timestamp name."""
    column = SkillVersion.id if not ref.isdigit() else SkillVersion.version
    return await db.scalar(select(SkillVersion).where(SkillVersion.skill_id == skill_id, column == ref))


async def get_versions(db: AsyncSession, version_ids: Sequence[str]) -> dict[str, SkillVersion]:
    if not version_ids:
        return {}
    rows = await db.scalars(select(SkillVersion).where(SkillVersion.id.in_(version_ids)))
    return {row.id: row for row in rows}


async def newest_version(db: AsyncSession, skill_id: str) -> SkillVersion | None:
    query = (
        select(SkillVersion)
        .where(SkillVersion.skill_id == skill_id)
        .order_by(SkillVersion.version.desc())
        .limit(1)
    )
    return await db.scalar(query)


async def highest_version_name(db: AsyncSession, skill_id: str) -> str | None:
    # Names are equal-length digit strings, so the greatest string is the greatest number.
    return await db.scalar(select(func.max(SkillVersion.version)).where(SkillVersion.skill_id == skill_id))


async def count_versions(db: AsyncSession, skill_id: str) -> int:
    return int(await db.scalar(select(func.count()).where(SkillVersion.skill_id == skill_id)) or 0)


async def files(db: AsyncSession, version_id: str) -> Sequence[SkillFile]:
    query = select(SkillFile).where(SkillFile.version_id == version_id).order_by(SkillFile.path)
    return (await db.scalars(query)).all()


async def file_digests(
    db: AsyncSession, *, skill_id: str | None = None, version_id: str | None = None
) -> list[str]:
    """One digest per file row (repeats kept: each row holds one reference)."""
    query = select(SkillFile.sha256)
    if version_id is not None:
        query = query.where(SkillFile.version_id == version_id)
    if skill_id is not None:
        query = query.join(SkillVersion, SkillVersion.id == SkillFile.version_id).where(
            SkillVersion.skill_id == skill_id
        )
    return list((await db.scalars(query)).all())


async def delete_version(db: AsyncSession, version_id: str) -> None:
    await db.execute(delete(SkillFile).where(SkillFile.version_id == version_id))
    await db.execute(delete(SkillVersion).where(SkillVersion.id == version_id))


async def delete_skill(db: AsyncSession, skill_id: str) -> None:
    versions = select(SkillVersion.id).where(SkillVersion.skill_id == skill_id)
    await db.execute(delete(SkillFile).where(SkillFile.version_id.in_(versions)))
    await db.execute(delete(SkillVersion).where(SkillVersion.skill_id == skill_id))
    await db.execute(delete(Skill).where(Skill.id == skill_id))


async def list_skills(db: AsyncSession, *, after: tuple[datetime, str] | None, limit: int) -> Sequence[Skill]:
    """Newest first; ``after`` is the (created_at, id) of the last row of the previous page."""
    query = select(Skill)
    if after is not None:
        query = query.where(
            or_(Skill.created_at < after[0], and_(Skill.created_at == after[0], Skill.id < after[1]))
        )
    query = query.order_by(Skill.created_at.desc(), Skill.id.desc()).limit(limit)
    return (await db.scalars(query)).all()


async def list_versions(
    db: AsyncSession, skill_id: str, *, before: str | None, limit: int
) -> Sequence[SkillVersion]:
    """Newest first by version name; ``before`` is the name of the last row of the previous page."""
    query = select(SkillVersion).where(SkillVersion.skill_id == skill_id)
    if before is not None:
        query = query.where(SkillVersion.version < before)
    query = query.order_by(SkillVersion.version.desc()).limit(limit)
    return (await db.scalars(query)).all()
