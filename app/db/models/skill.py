from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db.base import Base


class Skill(Base):
    """A custom skill: a name fixed at creation and immutable versions of its files."""

    __tablename__ = "skills"
    __table_args__ = (Index("ix_skills_created_at", "created_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The kebab-case slug from the first upload's SKILL.md; every later version must keep it.
    name: Mapped[str] = mapped_column(String(64))
    display_name: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(32))
    latest_version_id: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class SkillVersion(Base):
    """One immutable upload of a skill's files."""

    __tablename__ = "skill_versions"
    # Also the index versions are listed and addressed by.
    __table_args__ = (UniqueConstraint("skill_id", "version"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    skill_id: Mapped[str] = mapped_column(ForeignKey("skills.id", ondelete="CASCADE"))
    # The epoch-microseconds name of the version (how `skills-2025-10-02` clients address it).
    version: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(64))
    description: Mapped[str] = mapped_column(Text)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    file_count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]


class SkillFile(Base):
    """A file of a skill version, by its path below the skill's directory; bytes in the content store."""

    __tablename__ = "skill_files"

    version_id: Mapped[str] = mapped_column(
        ForeignKey("skill_versions.id", ondelete="CASCADE"), primary_key=True
    )
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    sha256: Mapped[str] = mapped_column(ForeignKey("content_blobs.sha256"), index=True)
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    executable: Mapped[bool] = mapped_column(Boolean)
